"""The local run's view of telemetry: a console exporter, turned on by CMK_TELEMETRY_CONSOLE=true.

It prints each custom event (as the OpenTelemetry log record Azure Monitor would turn into a customEvents row) and,
every CONSOLE_EXPORT_SECONDS, the metrics, so a developer sees the same names and dimensions Application Insights
would get. It is installed at most once per process, and never where the Python worker's own Azure Monitor switch
(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY) is on or another meter provider is already set: two exporters on the
same records are what duplicate rows come from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from shared.errors import InvalidSetting
from shared.untrusted import describe_value

CONSOLE_SETTING = "CMK_TELEMETRY_CONSOLE"
WORKER_SWITCH = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
CONSOLE_EXPORT_SECONDS = 30.0

_lock = threading.Lock()
_installed: dict[str, Any] = {}


def console_wanted(env: Mapping[str, str]) -> bool:
    value = (env.get(CONSOLE_SETTING) or "false").strip().lower()
    if value not in ("true", "false"):
        raise InvalidSetting(CONSOLE_SETTING, f"must be true or false (got {describe_value(value, quote=True)})")
    return value == "true" and (env.get(WORKER_SWITCH) or "").strip().lower() != "true"


def install_console(event_logger: logging.Logger, *, stream: Any = None) -> Any:
    """The meter provider the console exporter reads, installed on the first call and returned on every later
    one; None when a meter provider other than OpenTelemetry's default is already in place (someone configured
    telemetry first: adding ours would duplicate it)."""
    with _lock:
        if "meter_provider" in _installed:
            return _installed["meter_provider"]
        from opentelemetry import metrics
        from opentelemetry.instrumentation.logging.handler import LoggingHandler  # the SDK's own one is deprecated
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

        if type(metrics.get_meter_provider()).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
            _installed["meter_provider"] = None
            return None
        out = {"out": stream} if stream is not None else {}
        logs = LoggerProvider()
        logs.add_log_record_processor(SimpleLogRecordProcessor(ConsoleLogRecordExporter(**out)))
        event_logger.addHandler(LoggingHandler(logger_provider=logs))
        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(**out), export_interval_millis=CONSOLE_EXPORT_SECONDS * 1000
        )
        provider = MeterProvider(metric_readers=[reader])
        _installed["meter_provider"] = provider
        return provider
