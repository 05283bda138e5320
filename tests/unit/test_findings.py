"""Finding codes are an API (alert rules match on them): one enum, each code with one severity, and the README's
table says exactly what the enum says."""

from __future__ import annotations

import re
from pathlib import Path

from shared.findings import FindingCode, finding
from shared.model import Severity

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_lists_every_code_with_its_severity_and_nothing_else():
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", README.read_text(), re.MULTILINE)
    assert [(code, severity) for code, severity, _ in rows] == [(c.value, c.severity.value) for c in FindingCode]
    assert [summary for _, _, summary in rows] == [c.summary for c in FindingCode]


def test_codes_are_unique_and_findings_take_the_codes_severity():
    assert len({c.value for c in FindingCode}) == len(FindingCode)
    made = finding(FindingCode.ACCESS_MISSING, "k", "message", principal_id="p")
    assert made.code == "AccessMissing" and made.severity is Severity.CRITICAL and made.detail == {"principal_id": "p"}
    assert FindingCode("AccessMissing") is FindingCode.ACCESS_MISSING
