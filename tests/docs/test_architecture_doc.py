"""docs/architecture.md's table of functions is exactly what the app registers, each under its own trigger."""

from __future__ import annotations

import json
from pathlib import Path

from tests.docs.tables import rows
from tests.support.app_index import indexed_functions

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def trigger_words(binding: dict) -> str:
    """How the table names a trigger: its kind, and its route or queue."""
    kind = binding["type"]
    if kind == "httpTrigger":
        return f"HTTP `{binding['methods'][0].upper()} /api/{binding['route']}"
    if kind == "queueTrigger":
        return f"queue `{binding['queueName']}`"
    if kind == "timerTrigger":
        return "timer `CMK_SWEEP_SCHEDULE`"
    assert kind == "eventGridTrigger", kind
    return "Event Grid"


def test_the_functions_table_lists_every_registered_function_under_its_trigger_and_nothing_else():
    documented = {row[1].strip("`"): row[0] for row in rows(DOC, "trigger")}
    assert len(documented) == len(rows(DOC, "trigger")), "a function is listed twice"
    registered = {}
    for name, function in indexed_functions().items():
        triggers = [b for b in json.loads(function.get_function_json())["bindings"] if b["type"].endswith("Trigger")]
        assert len(triggers) == 1, name
        registered[name] = trigger_words(triggers[0])
    assert set(documented) == set(registered)
    for name, words in registered.items():
        assert documented[name].startswith(words), (name, documented[name])
