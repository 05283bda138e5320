"""`python -m devhost [--app function_app:app] [--port 7071] [--host 127.0.0.1] [--settings local.settings.json]
[--host-json host.json]`: serve a v2 FunctionApp like `func start`.

Order matters as in Core Tools: settings go into the environment before the app is imported, so module-level code in
the app sees them. `--port 0` binds a free port; the ready line says which.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from devhost import console
from devhost.app_loader import AppLoadError, import_function_app, index_functions
from devhost.host_state import HostState
from devhost.invocation import Invoker
from devhost.keys import HostKeys
from devhost.serve import serve
from devhost.settings import SettingsError, apply_to_environ, load_host_config, load_local_settings

DEFAULT_PORT = 7071


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: Host.LocalHttpPort, else 7071)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--settings", default="local.settings.json", type=Path, help="local settings file")
    parser.add_argument("--host-json", default="host.json", type=Path, help="host.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console.configure_logging()
    try:
        settings = load_local_settings(args.settings)
        apply_to_environ(settings)
        config = load_host_config(args.host_json)
        app = import_function_app(args.app)
        functions = index_functions(app)
    except (SettingsError, AppLoadError) as error:
        print(f"devhost: {error}", file=sys.stderr)
        return 1
    port = args.port if args.port is not None else (settings.local_http_port or DEFAULT_PORT)
    state = HostState(
        functions=functions,
        keys=HostKeys.from_settings(os.environ),
        invoker=Invoker(function_directory=Path.cwd(), timeout=config.function_timeout),
        config=config,
    )
    code = asyncio.run(serve(state, host=args.host, port=port))
    if state.invoker.sync_runs_in_progress:
        # a thread running a sync function cannot be stopped, and the interpreter would wait for it at exit
        logging.getLogger("devhost").warning(
            "%d sync function run(s) still in progress; exiting without waiting for them",
            state.invoker.sync_runs_in_progress,
        )
        sys.stdout.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
