"""The app's Telemetry, as shared.bootstrap builds it once per process."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.telemetry.console import console_wanted, install_console
from shared.telemetry.otel import EVENT_LOGGER, OtelTelemetry


def app_telemetry(env: Mapping[str, str]) -> OtelTelemetry:
    """Through the Python worker's Azure Monitor set-up in Azure (configured there, never here, or rows would come
    twice); to a console locally when CMK_TELEMETRY_CONSOLE=true; otherwise events are plain log lines."""
    provider = install_console(logging.getLogger(EVENT_LOGGER)) if console_wanted(env) else None
    return OtelTelemetry(meter_provider=provider)
