"""The telemetry contract the deploy-infra Workbook queries (/work briefs: telemetry-contract), held here literally:
renaming an event, a metric or a dimension in shared.telemetry.names fails this test, which is the point: the
Workbook would go blank silently. Also: every name the app sends is in the contract, and the operating doc lists it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from shared.telemetry import names

ROOT = Path(__file__).resolve().parents[3]

CONTRACT_EVENTS = {
    "CmkGuardian.KeyRotated": ("key", "version", "previous_version", "trigger", "outcome"),
    "CmkGuardian.RewrapStarted": ("key", "version", "shards", "outcome"),
    "CmkGuardian.RewrapCompleted": (
        "key", "version", "processed", "succeeded", "failed", "duration_seconds", "outcome",
    ),
    "CmkGuardian.ConsumerMoved": ("key", "version", "consumer", "outcome"),
    "CmkGuardian.VersionRetired": ("key", "version", "outcome"),
    "CmkGuardian.AccessRemediated": ("key", "principal", "consumer", "action", "outcome"),
    "CmkGuardian.RevocationExecuted": ("key", "consumer", "outcome"),
    "CmkGuardian.RevocationVerified": ("key", "consumer", "outcome"),
    "CmkGuardian.RevocationRestored": ("key", "consumer", "outcome"),
    "CmkGuardian.AlertSent": ("alert_type", "severity", "key", "outcome"),
    "CmkGuardian.SweepCompleted": (
        "keys", "findings_critical", "findings_high", "findings_medium", "findings_low", "outcome",
    ),
}  # fmt: skip
CONTRACT_METRICS = {
    "cmk.deks": ("gauge", ("key", "version")),
    "cmk.rewrap.deks": ("counter", ("key", "outcome")),
    "cmk.findings": ("gauge", ("key", "severity")),
    "cmk.keyvault.calls": ("counter", ("operation", "status")),
    "cmk.keyvault.throttled": ("counter", ("operation",)),
}


def test_the_names_module_is_the_contract():
    assert names.EVENTS == CONTRACT_EVENTS
    assert names.METRICS == CONTRACT_METRICS
    assert names.METER_NAME == "cmk_guardian"
    assert names.CUSTOM_EVENT_ATTRIBUTE == "microsoft.custom_event.name"


def test_every_event_of_the_contract_is_sent_somewhere_in_the_app():
    """Each `names.X` constant of an event or metric is used by a handler or adapter: none is only declared."""
    constants = {
        k: v for k, v in vars(names).items() if isinstance(v, str) and (v in names.EVENTS or v in names.METRICS)
    }
    used = set()
    for path in [*(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        if path.parent.name == "telemetry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "names":
                used.add(node.attr)
    assert set(constants) - used == set()


def test_the_operating_doc_lists_every_event_and_metric():
    doc = (ROOT / "docs" / "operating.md").read_text()
    listed = set(re.findall(r"`(CmkGuardian\.[A-Za-z]+|cmk\.[a-z.]+)`", doc))
    assert set(names.EVENTS) | set(names.METRICS) <= listed
