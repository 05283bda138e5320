"""What devhost prints: log lines in Core Tools' shape (`[2024-05-01T10:00:00.123Z] message`, on stdout, the
function's own `logging` calls included), the function list at start, and the one JSON "ready" line that scripts and
tests wait for.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TextIO

from devhost.app_loader import FunctionSpec
from devhost.keys import HostKeys


class _CoreToolsFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def configure_logging(stream: TextIO | None = None) -> None:
    """Root logger at INFO to stdout, so the function's own logging shows like the host's; SDK chatter quieted."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_CoreToolsFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # azure-core logs every storage request at INFO; aiohttp's access log is not something Core Tools prints
    for noisy in ("azure", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def function_lines(functions: list[FunctionSpec], base_url: str, route_prefix: str) -> list[str]:
    """'Functions:' then one line per function, as Core Tools lists them."""
    lines = ["Functions:"]
    for spec in functions:
        if spec.route is not None:
            route = f"{route_prefix}/{spec.route.template}" if route_prefix else spec.route.template
            lines.append(f"  {spec.name}: [{','.join(spec.methods)}] {base_url}/{route}")
        else:
            lines.append(f"  {spec.name}: {spec.trigger_type}")
    return lines


def ready_line(functions: list[FunctionSpec], base_url: str, keys: HostKeys) -> str:
    """The single JSON line that says devhost is serving. It carries only the keys devhost generated (a caller
    cannot know them otherwise); keys from settings stay out, because whoever set them has them and output is logged.
    """
    return json.dumps(
        {
            "devhost": "ready",
            "url": base_url,
            **keys.printable(),
            "functions": [spec.describe() for spec in functions],
        }
    )


def emit(lines: list[str], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
