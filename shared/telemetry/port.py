"""The Telemetry port: what handlers call to say a lifecycle step happened or a quantity changed.

Handlers stay pure: they name an event from shared.telemetry.names and its dimensions, and whoever is wired in sends
it (Application Insights in Azure, a console locally, a recorder in tests, nothing at all by default). Telemetry is
never a reason for an action to fail, so an implementation swallows its own errors.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.telemetry.names import EVENTS, METRICS

Dimension = str | int | float | bool | None


@runtime_checkable
class Telemetry(Protocol):
    def event(self, name: str, **dimensions: Dimension) -> None:
        """One custom event (`customEvents`): `name` from shared.telemetry.names.EVENTS with exactly its dimensions."""

    def count(self, metric: str, value: int = 1, **attributes: Dimension) -> None:
        """Add `value` to a counter of shared.telemetry.names.METRICS."""

    def gauge(self, metric: str, value: float, **attributes: Dimension) -> None:
        """Set a gauge of shared.telemetry.names.METRICS to `value`."""


class NoTelemetry:
    """The default of every handler's `telemetry` port: sends nothing (unit tests and tools that need none)."""

    def event(self, name: str, **dimensions: Dimension) -> None:
        return None

    def count(self, metric: str, value: int = 1, **attributes: Dimension) -> None:
        return None

    def gauge(self, metric: str, value: float, **attributes: Dimension) -> None:
        return None


NO_TELEMETRY = NoTelemetry()


def as_text(value: Dimension) -> str:
    """Every dimension is a string in customDimensions; None becomes "" rather than the word None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)[:256]


def contract_problem(kind: str, name: str, given: set[str]) -> str | None:
    """Why a call does not match the contract (unknown name, missing or extra dimensions), or None."""
    if kind == "event":
        expected = EVENTS.get(name)
    else:
        metric = METRICS.get(name)
        if metric is not None and metric[0] != kind:
            return f"{name} is a {metric[0]}, not a {kind}"
        expected = metric[1] if metric is not None else None
    if expected is None:
        return f"{name} is not a {kind} of the telemetry contract (shared.telemetry.names)"
    if given != set(expected):
        return f"{name} takes {sorted(expected)}, got {sorted(given)}"
    return None
