"""Telemetry: the custom events and metrics operators see in Application Insights (and, locally, on a console).

shared.telemetry.names is the contract (event and metric names with their dimensions) the Workbook queries;
shared.telemetry.port the Telemetry port handlers call (NO_TELEMETRY by default); shared.telemetry.otel its
OpenTelemetry adapter, which sends through whatever the Python worker configured and configures nothing itself;
shared.telemetry.console the local run's console exporter (CMK_TELEMETRY_CONSOLE=true).
"""

from shared.telemetry import names
from shared.telemetry.app import app_telemetry
from shared.telemetry.console import CONSOLE_SETTING, WORKER_SWITCH, console_wanted, install_console
from shared.telemetry.otel import EVENT_LOGGER, OtelTelemetry
from shared.telemetry.port import NO_TELEMETRY, Dimension, NoTelemetry, Telemetry, as_text, contract_problem

__all__ = [
    "CONSOLE_SETTING",
    "EVENT_LOGGER",
    "NO_TELEMETRY",
    "WORKER_SWITCH",
    "Dimension",
    "NoTelemetry",
    "OtelTelemetry",
    "Telemetry",
    "app_telemetry",
    "as_text",
    "console_wanted",
    "contract_problem",
    "install_console",
    "names",
]
