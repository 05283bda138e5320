"""docs/operating.md says what the code does: its findings table is exactly the FindingCode enum (codes are an API:
alert rules match on them), its routes table exactly the app's HTTP triggers, its alerts table exactly the alert
types the handlers send."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.findings import FindingCode
from tests.docs.tables import rows
from tests.support.app_index import http_routes, indexed_functions

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operating.md"
ALERT_TYPE = re.compile(r'"(CmkGuardian\.[A-Z][A-Za-z]*\.[A-Z][A-Za-z]*)"')


def test_the_findings_table_lists_every_code_with_its_severity_and_nothing_else():
    table = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", DOC.read_text(), re.MULTILINE)
    assert [(code, severity) for code, severity, _ in table] == [(c.value, c.severity.value) for c in FindingCode]
    assert [summary for _, _, summary in table] == [c.summary for c in FindingCode]


def test_the_routes_table_lists_every_http_trigger_with_its_function_and_nothing_else():
    documented = {
        (row[1].strip("`").removeprefix("/api"), row[0].lower(), row[2].strip("`")) for row in rows(DOC, "method")
    }
    served = set()
    for name, function in indexed_functions().items():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                served |= {(f"/{binding['route']}", str(m).lower(), name) for m in binding["methods"]}
    assert {(route, method) for route, method, _ in served} == http_routes()
    assert documented == served


def test_the_alerts_table_lists_every_alert_type_the_handlers_send_and_nothing_else():
    sources = [*(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py"), ROOT / "function_app.py"]
    sent = {name for path in sources for name in ALERT_TYPE.findall(path.read_text())}
    assert "CmkGuardian.Key.Rotated" in sent, "the pattern is stale"
    documented = [row[0].strip("`") for row in rows(DOC, "alert")]
    assert len(documented) == len(set(documented))
    assert set(documented) == sent
    severities = {"info", "warning", "high", "critical"}
    assert all(set(row[1].split(", ")) <= severities for row in rows(DOC, "alert"))
