"""`python -m emulators [--config FILE.json] [--state-dir DIR] [--port-base N] [--host 127.0.0.1]`

Starts every local Azure stand-in in one process and prints one JSON "ready" line with their URLs.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__.splitlines()[2])
    parser.add_argument("--config", type=Path, help="JSON file with tenant, subscription, vaults, event grid ...")
    parser.add_argument("--state-dir", type=Path, help="keep state (and the TLS certificate) here across restarts")
    parser.add_argument(
        "--port-base", type=int, default=0, help="first port (ARM+admin, then topic, then vaults); 0 = free ports"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (loopback by default)")
    parser.add_argument(
        "--rbac-propagation-max-seconds",
        type=float,
        help="longest emulated delay before a role assignment change reaches Key Vault (0 = at once; default 600)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from emulators.config import ConfigError, load_config, with_propagation
    from emulators.server import serve

    try:
        config = load_config(args.config)
        if args.rbac_propagation_max_seconds is not None:
            config = with_propagation(config, args.rbac_propagation_max_seconds)
    except ConfigError as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        serve(config, state_dir=args.state_dir, host=args.host, port_base=args.port_base, started=STARTED)
    )


if __name__ == "__main__":
    sys.exit(main())
