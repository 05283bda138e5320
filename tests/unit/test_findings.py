"""Finding codes are an API (alert rules match on them): one enum, each code with one severity. That docs/operating.md's
table says exactly what the enum says is tests/docs/test_operating_doc.py's."""

from __future__ import annotations

from shared.findings import FindingCode, finding
from shared.model import Severity


def test_codes_are_unique_and_findings_take_the_codes_severity():
    assert len({c.value for c in FindingCode}) == len(FindingCode)
    made = finding(FindingCode.ACCESS_MISSING, "k", "message", principal_id="p")
    assert made.code == "AccessMissing" and made.severity is Severity.CRITICAL and made.detail == {"principal_id": "p"}
    assert FindingCode("AccessMissing") is FindingCode.ACCESS_MISSING
