"""What devhost reads before it imports the app: local.settings.json (app settings, local port) and host.json (route
prefix, queue polling and retry options, function timeout).

Both files are optional, as with Core Tools. A file that exists but is malformed is an error that names the file and
the field, because silently falling back to defaults would make a local run behave unlike the configured one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A settings file exists but cannot be used; the message names the file and the field."""


_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?$")


def parse_timespan(text: str, *, where: str) -> dt.timedelta:
    """A .NET TimeSpan string ("hh:mm:ss", "d.hh:mm:ss", "hh:mm:ss.fff"), the way host.json writes durations."""
    match = _TIMESPAN.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise SettingsError(f"{where}: not a TimeSpan like 'hh:mm:ss' ({text!r})")
    hours, minutes, seconds = int(match["h"]), int(match["m"]), int(match["s"])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise SettingsError(f"{where}: hours, minutes or seconds out of range ({text!r})")
    frac = match["frac"] or "0"
    return dt.timedelta(
        days=int(match["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int(frac.ljust(6, "0")[:6]),
    )


@dataclass(frozen=True)
class LocalSettings:
    """local.settings.json: `Values` become environment variables; `Host.LocalHttpPort` is the default port."""

    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None
    source: Path | None = None


def load_local_settings(path: Path) -> LocalSettings:
    """Reads local.settings.json; a missing file gives empty settings (Core Tools starts without one too)."""
    if not path.is_file():
        return LocalSettings()
    document = _read_json_object(path)
    raw_values = document.get("Values", {})
    if not isinstance(raw_values, dict):
        raise SettingsError(f"{path}: Values: must be an object of setting names to strings")
    values: dict[str, str] = {}
    for name, value in raw_values.items():
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        elif value is None:
            values[name] = ""
        else:
            raise SettingsError(f"{path}: Values.{name}: must be a string, number or boolean")
    host = document.get("Host", {})
    if not isinstance(host, dict):
        raise SettingsError(f"{path}: Host: must be an object")
    port = host.get("LocalHttpPort")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise SettingsError(f"{path}: Host.LocalHttpPort: must be a port number, got {port!r}")
    return LocalSettings(values=values, local_http_port=port, source=path)


def apply_to_environ(settings: LocalSettings, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copies `Values` into the environment without overriding variables already set, as Core Tools does.

    Returns the names that were set, so the caller can say which settings came from the file.
    """
    target = os.environ if environ is None else environ
    applied = []
    for name, value in settings.values.items():
        if name not in target:
            target[name] = value
            applied.append(name)
    return applied


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the Storage Queues extension's (v5) defaults."""

    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_dequeue_count: int = 5
    visibility_timeout: dt.timedelta = dt.timedelta(0)
    max_polling_interval: dt.timedelta = dt.timedelta(minutes=1)
    message_encoding: str = "base64"

    @property
    def effective_new_batch_threshold(self) -> int:
        """When fewer messages than this are in flight, the next batch is fetched (the host's default: half)."""
        return self.new_batch_threshold if self.new_batch_threshold is not None else self.batch_size // 2


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json that change what devhost does."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: dt.timedelta | None = None
    source: Path | None = None


def load_host_config(path: Path) -> HostConfig:
    """Reads host.json; a missing file gives the host's defaults."""
    if not path.is_file():
        return HostConfig()
    document = _read_json_object(path)
    extensions = _object(document, "extensions", path)
    http = _object(extensions, "http", path, prefix="extensions.")
    route_prefix = http.get("routePrefix", "api")
    if not isinstance(route_prefix, str):
        raise SettingsError(f"{path}: extensions.http.routePrefix: must be a string")
    queues = _queue_options(_object(extensions, "queues", path, prefix="extensions."), path)
    timeout_text = document.get("functionTimeout")
    timeout = None if timeout_text in (None, "-1") else parse_timespan(timeout_text, where=f"{path}: functionTimeout")
    return HostConfig(route_prefix=route_prefix.strip("/"), queues=queues, function_timeout=timeout, source=path)


def _queue_options(raw: Mapping[str, Any], path: Path) -> QueueOptions:
    where = f"{path}: extensions.queues"
    defaults = QueueOptions()

    def positive_int(name: str, default: int, upper: int) -> int:
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
            raise SettingsError(f"{where}.{name}: must be an integer from 1 to {upper}, got {value!r}")
        return value

    batch_size = positive_int("batchSize", defaults.batch_size, 32)
    threshold = raw.get("newBatchThreshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0):
        raise SettingsError(f"{where}.newBatchThreshold: must be a non-negative integer, got {threshold!r}")
    encoding = raw.get("messageEncoding", defaults.message_encoding)
    if not isinstance(encoding, str) or encoding.lower() not in ("base64", "none"):
        raise SettingsError(f"{where}.messageEncoding: must be 'base64' or 'none', got {encoding!r}")
    visibility = raw.get("visibilityTimeout")
    polling = raw.get("maxPollingInterval")
    max_polling = (
        defaults.max_polling_interval
        if polling is None
        else parse_timespan(polling, where=f"{where}.maxPollingInterval")
    )
    if max_polling < dt.timedelta(milliseconds=100):
        raise SettingsError(f"{where}.maxPollingInterval: must be at least 00:00:00.1 ({polling!r})")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_dequeue_count=positive_int("maxDequeueCount", defaults.max_dequeue_count, 10_000),
        visibility_timeout=(
            defaults.visibility_timeout
            if visibility is None
            else parse_timespan(visibility, where=f"{where}.visibilityTimeout")
        ),
        max_polling_interval=max_polling,
        message_encoding=encoding.lower(),
    )


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise SettingsError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: must hold a JSON object")
    return document


def _object(parent: Mapping[str, Any], name: str, path: Path, prefix: str = "") -> Mapping[str, Any]:
    value = parent.get(name, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{path}: {prefix}{name}: must be an object")
    return value
