"""The Telemetry port over OpenTelemetry: custom events as log records, metrics through the Meter API.

Nothing here configures an exporter. In Azure the Python worker does it once per process, from its own switch
(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true calls configure_azure_monitor with
APPLICATIONINSIGHTS_CONNECTION_STRING), and hooks the logging root: a record carrying `microsoft.custom_event.name`
becomes a customEvents row, its other attributes customDimensions. Configuring it again here would send every row
twice. Locally, shared.telemetry.console may install a console exporter instead (once, and never next to the
worker's). With neither, the events are plain log lines and the metrics go to OpenTelemetry's no-op provider.

OpenTelemetry is imported on the first metric, not with this module, so a cold start that sends none never pays
for it. A failure to send is logged once and never raised: no key rotates or fails to rotate because of telemetry.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.telemetry.names import CUSTOM_EVENT_ATTRIBUTE, EVENTS, METER_NAME, METRICS
from shared.telemetry.port import Dimension, as_text, contract_problem

EVENT_LOGGER = "cmk.telemetry"


class OtelTelemetry:
    def __init__(self, *, logger: logging.Logger | None = None, meter_provider: Any = None) -> None:
        self._log = logger or logging.getLogger(EVENT_LOGGER)
        self._meter_provider = meter_provider  # None: OpenTelemetry's global one (the worker's, once configured)
        self._meter: Any = None
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def event(self, name: str, **dimensions: Dimension) -> None:
        try:
            if problem := contract_problem("event", name, set(dimensions)):
                self._warn_once(problem)
                if name not in EVENTS:
                    return  # the Workbook would never query it; a known name with a dimension short still goes
            expected = EVENTS[name]
            attributes = {k: as_text(dimensions.get(k)) for k in expected}
            shown = " ".join(f"{k}={v}" for k, v in attributes.items() if v)
            self._log.info("%s %s", name, shown, extra={CUSTOM_EVENT_ATTRIBUTE: name, **attributes})
        except Exception as exc:  # telemetry never fails an action
            self._warn_once(f"event {name} not sent: {type(exc).__name__}")

    def count(self, metric: str, value: int = 1, **attributes: Dimension) -> None:
        self._record("counter", metric, value, attributes)

    def gauge(self, metric: str, value: float, **attributes: Dimension) -> None:
        self._record("gauge", metric, value, attributes)

    def _record(self, kind: str, metric: str, value: float, attributes: dict[str, Dimension]) -> None:
        try:
            if problem := contract_problem(kind, metric, set(attributes)):
                self._warn_once(problem)
                return
            instrument = self._instrument(kind, metric)
            if instrument is None:
                return
            labels = {k: as_text(attributes.get(k)) for k in METRICS[metric][1]}
            if kind == "counter":
                instrument.add(value, labels)
            else:
                instrument.set(value, labels)
        except Exception as exc:
            self._warn_once(f"metric {metric} not recorded: {type(exc).__name__}")

    def _instrument(self, kind: str, metric: str) -> Any:
        with self._lock:
            if metric in self._instruments:
                return self._instruments[metric]
            if self._meter is None:
                try:
                    from opentelemetry import metrics
                except ImportError:  # not installed: events still go out as log records
                    self._meter = False
                else:
                    provider = self._meter_provider or metrics.get_meter_provider()
                    self._meter = provider.get_meter(METER_NAME)
            if self._meter is False:
                self._instruments[metric] = None
            elif kind == "counter":
                self._instruments[metric] = self._meter.create_counter(metric)
            else:
                self._instruments[metric] = self._meter.create_gauge(metric)
            return self._instruments[metric]

    def _warn_once(self, problem: str) -> None:
        if problem not in self._warned:
            self._warned.add(problem)
            logging.getLogger("cmk").warning("telemetry: %s", problem)
