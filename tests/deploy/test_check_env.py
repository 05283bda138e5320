"""The hooks' check of the azd environment (infra/hooks/check_env.py): usable values pass, and each bad one is named
before anything is deployed, including an inventory key or consumer the templates would grant the app nothing on."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.deploy.templates import INFRA

SCRIPT = INFRA / "hooks" / "check_env.py"
SUB = "6d1f7a2e-0c3b-4c8e-9a51-2f0e4b7d9c10"  # the reference inventory's defaults
RG = f"/subscriptions/{SUB}/resourceGroups/rg-cmk-reference/providers"
VAULT = f"{RG}/Microsoft.KeyVault/vaults/kv-cmk-reference"


def load():
    spec = importlib.util.spec_from_file_location("check_env", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = load().check


def reference_env(**changes: str) -> dict[str, str]:
    env = {
        "AZURE_SUBSCRIPTION_ID": SUB,
        "CMK_VAULTS": json.dumps([{"id": VAULT, "location": "westeurope", "systemTopicName": ""}]),
        "CMK_KEY_IDS": json.dumps([f"{VAULT}/keys/aks-encryption-key", f"{VAULT}/keys/mysql-encryption-key"]),
        "CMK_MYSQL_SERVER_IDS": json.dumps([f"{RG}/Microsoft.DBforMySQL/flexibleServers/mysql-dcc"]),
        "CMK_DISK_ENCRYPTION_SET_IDS": json.dumps([f"{RG}/Microsoft.Compute/diskEncryptionSets/des-aks-cmk"]),
        "CMK_MODE": "audit",
        "CMK_OPERATORS": "a7d3b9e1-2c4f-4d8a-b6e0-9f1c3a5e7b64",
    }
    env.update(changes)
    return env


def test_the_reference_deployment_described_completely_passes():
    assert check(reference_env()) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"CMK_VAULTS": ""}, "CMK_VAULTS: not set"),
        ({"CMK_VAULTS": "[{'id': 1}]"}, "CMK_VAULTS: not JSON"),
        ({"CMK_VAULTS": json.dumps([{"id": VAULT}])}, "CMK_VAULTS[0].location: required"),
        ({"CMK_VAULTS": json.dumps([{"id": VAULT + "/keys/x", "location": "x"}])}, "CMK_VAULTS[0].id: not a Key Vault"),
        ({"CMK_VAULTS": json.dumps([{"id": VAULT, "location": "x", "topic": ""}])}, "unknown field 'topic'"),
        ({"CMK_KEY_IDS": json.dumps([VAULT])}, "CMK_KEY_IDS[0]: not the resource id of a Key Vault key"),
        ({"CMK_KEY_IDS": json.dumps([VAULT + "2/keys/k"])}, "is in no vault of CMK_VAULTS"),
        ({"CMK_MYSQL_SERVER_IDS": json.dumps([VAULT])}, "CMK_MYSQL_SERVER_IDS[0]: not the resource id of a MySQL"),
        ({"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000"}, "not in the deployment's subscription"),
        ({"CMK_MODE": "Enforce!"}, "CMK_MODE: must be one of audit, enforce"),
        ({"CMK_ROLE_EVENTS_SCOPE": "tenant"}, "CMK_ROLE_EVENTS_SCOPE: must be one of"),
        ({"CMK_OPERATORS": "alice@contoso.com"}, "CMK_OPERATORS: 'alice@contoso.com' is not an object id"),
        ({"CMK_KEY_IDS": json.dumps([f"{VAULT}/keys/aks-encryption-key"])}, "manages " + VAULT + "/keys/mysql"),
        ({"CMK_DISK_ENCRYPTION_SET_IDS": "[]"}, "CMK_DISK_ENCRYPTION_SET_IDS: the inventory's consumer"),
        ({"CMK_INVENTORY_PATH": "inventory/absent.yaml"}, "CMK_INVENTORY_PATH: inventory/absent.yaml not found"),
    ],
)
def test_each_bad_value_is_named(changes: dict[str, str], named: str):
    problems = check(reference_env(**changes))
    assert any(named in p for p in problems), problems


def test_the_hook_script_exits_non_zero_and_says_why():
    env = {"PATH": "/usr/bin:/bin", "CMK_KEY_IDS": "[]"}
    run = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "check_env: CMK_VAULTS: not set" in run.stderr
