"""docs/settings.md lists exactly the settings the code reads, the reference inventory's placeholders and the hosts'
own, each once; local.settings.sample.json documents the same ones; the defaults it states are the code's."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import Settings
from tests.docs.tables import rows

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "settings.md"
SAMPLE = ROOT / "local.settings.sample.json"
SETTING = re.compile(r'"((?:CMK|WEBSITE|DEVHOST)_[A-Z_]+|AZURE_CLIENT_ID|AzureWebJobsStorage(?:__\w+)?)"')
# Read by the Functions host or the Azure SDK, never named in the project's code.
HOST_OR_SDK = {
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsFeatureFlags",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",  # the Python worker's own Azure Monitor switch
    "APPLICATIONINSIGHTS_CONNECTION_STRING",  # read by the worker and the host
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # read by the worker's exporter (Entra ID ingestion)
}


def settings_in_code() -> set[str]:
    sources = [ROOT / "function_app.py", *(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]
    sources += (ROOT / "devhost").rglob("*.py")
    found = {name for path in sources for name in SETTING.findall(path.read_text())}
    inventory = (ROOT / "inventory" / "reference.yaml").read_text()
    values = "\n".join(line.split(" #")[0] for line in inventory.splitlines() if not line.lstrip().startswith("#"))
    placeholders = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", values))
    return found | placeholders | HOST_OR_SDK


def documented() -> list[str]:
    return [row[0].strip("`") for row in rows(DOC, "setting")]


def test_the_settings_page_lists_every_setting_read_and_nothing_else():
    names = documented()
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert "CMK_SWEEP_SCHEDULE" in settings_in_code() and "CMK_MODE" in settings_in_code(), "the patterns are stale"
    assert set(names) == settings_in_code()


def test_the_sample_documents_every_setting_of_the_page_and_sets_only_documented_ones():
    sample = json.loads(SAMPLE.read_text())
    assert set(sample["Documentation"]) - {"about"} == set(documented())
    assert set(sample["Values"]) <= set(documented())
    assert "docs/settings.md" in sample["Documentation"]["about"]


def test_the_defaults_the_page_states_are_the_codes():
    defaults = {row[0].strip("`"): row[1].strip("`") for row in rows(DOC, "setting")}
    s = Settings.from_env({})
    assert defaults["CMK_CREDENTIAL"] == s.credential
    assert defaults["CMK_ARM_ENDPOINT"] == s.arm_endpoint
    assert defaults["CMK_SWEEP_SCHEDULE"] == s.sweep_schedule
    assert defaults["CMK_RBAC_PROPAGATION_SECONDS"] == str(s.rbac_propagation_seconds)
    assert defaults["CMK_SHARD_KEY_TTL_SECONDS"] == str(s.shard_key_ttl_seconds)
    assert defaults["CMK_VERIFY_CHALLENGE_RESOURCE"] == str(s.verify_challenge_resource).lower()
    assert ROOT / defaults["CMK_INVENTORY_PATH"] == s.inventory_path
    tables = {
        "CMK_CLAIMS_TABLE": s.claims_table,
        "CMK_AUDIT_TABLE": s.audit_table,
        "CMK_REVOCATIONS_TABLE": s.revocations_table,
        "CMK_DEK_TABLE": s.dek_table,
        "CMK_BUDGET_TABLE": s.budget_table,
        "CMK_SHARD_KEY_TABLE": s.shard_key_table,
    }
    assert {name: defaults[name] for name in tables} == tables
