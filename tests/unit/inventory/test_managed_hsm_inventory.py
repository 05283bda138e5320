"""A vault may be a Managed HSM (`kind: managed-hsm`): its own resource type and URL, its own roles, 28-day rotation."""

from __future__ import annotations

import pytest

from shared.inventory import VaultKind, parse_inventory
from shared.roles.builtin import HSM_CRYPTO_SERVICE_ENCRYPTION_USER
from tests.unit.inventory.test_inventory import SUB, assert_reported, problems_of, valid_doc

HSM_ID = f"/subscriptions/{SUB}/resourceGroups/rg-hsm/providers/Microsoft.KeyVault/managedHSMs/hsm-test"


def hsm_doc(**key_changes) -> dict:
    doc = valid_doc()
    doc["vaults"].append({"name": "hsm-test", "kind": "managed-hsm", "resource_id": HSM_ID})
    key = doc["keys"][2]
    key.update({"vault": "hsm-test", "role": "Managed HSM Crypto Service Encryption User", **key_changes})
    return doc


def test_a_managed_hsm_vault_has_its_kind_type_and_default_url():
    inventory = parse_inventory(hsm_doc(), source="test.yaml")
    hsm = next(v for v in inventory.vaults if v.name == "hsm-test")
    assert hsm.kind is VaultKind.MANAGED_HSM and hsm.managed_hsm
    assert hsm.url == "https://hsm-test.managedhsm.azure.net"
    key = inventory.key("other-key")
    assert key.role == HSM_CRYPTO_SERVICE_ENCRYPTION_USER
    assert key.scope == f"{HSM_ID}/keys/other-key"
    assert inventory.key("aks-key").vault.kind is VaultKind.KEY_VAULT  # the default
    assert {"name": "hsm-test", "kind": "managed-hsm"}.items() <= inventory.to_json()["vaults"][2].items()


def test_a_managed_hsm_role_may_be_named_by_id():
    doc = hsm_doc(role=HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid)
    assert parse_inventory(doc, source="test.yaml").key("other-key").role == HSM_CRYPTO_SERVICE_ENCRYPTION_USER


def test_a_managed_hsm_key_refuses_a_key_vault_role_and_the_reverse():
    problems = problems_of(hsm_doc(role="Key Vault Crypto Service Encryption User"))
    assert_reported(problems, "keys[other-key].role", "is a Key Vault role; a Managed HSM key takes")
    doc = valid_doc()
    doc["keys"][0]["role"] = "Managed HSM Crypto Service Encryption User"
    assert_reported(problems_of(doc), "keys[aks-key].role", "is a Managed HSM role")


def test_a_managed_hsm_key_rotates_no_more_often_than_every_28_days():
    rotation = {"rotate_after": "P14D", "expire_after": "P180D", "notify_before": "P30D"}
    problems = problems_of(hsm_doc(rotation=rotation))
    assert_reported(problems, "keys[other-key].rotation.rotate_after", "minimum of 28 days")
    parse_inventory(hsm_doc(rotation=dict(rotation, rotate_after="P28D")), source="test.yaml")


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"kind": "hsm"}, "vaults[hsm-test].kind", "unknown vault kind"),
        (
            {"kind": "managed-hsm", "resource_id": HSM_ID.replace("managedHSMs/hsm-test", "vaults/hsm-test")},
            "vaults[hsm-test].resource_id",
            "expected a Microsoft.KeyVault/managedHSMs resource id",
        ),
    ],
)
def test_bad_kind_or_resource_type_is_named(change, path, fragment):
    doc = hsm_doc()
    doc["vaults"][2].update(change)
    problems = problems_of(doc)
    assert_reported(problems, path, fragment)
