"""A Telemetry recorder for tests: keeps every event and metric, and refuses any call off the contract
(shared.telemetry.names), so a handler that names an event wrongly or forgets a dimension fails its unit test."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from shared.telemetry import Dimension, as_text, contract_problem


@dataclass(frozen=True)
class Sent:
    kind: str  # event, counter, gauge
    name: str
    dimensions: dict[str, str] = field(hash=False)
    value: float | None = None


class RecordingTelemetry:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def _keep(self, kind: str, name: str, dimensions: dict[str, Dimension], value: float | None) -> None:
        problem = contract_problem(kind, name, set(dimensions))
        assert problem is None, problem
        with self._lock:
            self.sent.append(Sent(kind, name, {k: as_text(v) for k, v in dimensions.items()}, value))

    def event(self, name: str, **dimensions: Dimension) -> None:
        self._keep("event", name, dimensions, None)

    def count(self, metric: str, value: int = 1, **attributes: Dimension) -> None:
        self._keep("counter", metric, attributes, value)

    def gauge(self, metric: str, value: float, **attributes: Dimension) -> None:
        self._keep("gauge", metric, attributes, value)

    def events(self, name: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.kind == "event" and (name is None or s.name == name)]

    def metrics(self, name: str) -> list[Sent]:
        return [s for s in self.sent if s.kind != "event" and s.name == name]
