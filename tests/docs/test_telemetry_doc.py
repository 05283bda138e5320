"""docs/operating.md's telemetry tables are exactly the contract (shared.telemetry.names): each event with its
dimensions, each metric with its kind and attributes, nothing more, so an operator (and the Workbook's author) reads
the names Application Insights really gets."""

from __future__ import annotations

from pathlib import Path

from shared.telemetry import names
from tests.docs.tables import rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"


def _names(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(","))


def test_the_events_table_is_the_contract():
    documented = {row[0].strip("`"): _names(row[1]) for row in rows(DOC, "event")}
    assert documented == names.EVENTS


def test_the_metrics_table_is_the_contract():
    documented = {row[0].strip("`"): (row[1], _names(row[2])) for row in rows(DOC, "metric")}
    assert documented == names.METRICS
