"""What importing function_app loads, seen through `python -X importtime`: the cold-start check, run against the
checkout by the unit tests and against the built deployment package by the packaging test."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Azure SDK client libraries: each loads on first use (shared.bootstrap), never at import.
SDK_CLIENT_PREFIXES = (
    "azure.keyvault",
    "azure.identity",
    "azure.mgmt",
    "azure.eventgrid",
    "azure.data",
    "azure.storage",
    "azure.monitor",  # the worker loads Azure Monitor itself when its switch is on; the app never imports it
    "opentelemetry",  # shared.telemetry imports it on the first metric, not with the app
)


def modules_loaded_by_import(python: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    """Every module `import function_app` loads, in order, with `python` run in `cwd`."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", "import function_app"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]


def sdk_clients_among(modules: list[str]) -> list[str]:
    """The SDK client modules (and azure-core's pipeline) among `modules`: what cold start must not pay for."""
    return [m for m in modules if m.startswith(SDK_CLIENT_PREFIXES) or m == "azure.core.pipeline"]
