"""infra/reference/ creates what inventory/reference.yaml describes: the vault's safety settings, each key's type,
size, operations and rotation policy (the one the app would set: ManagedKey.rotation.to_policy()), the consumer
identities by the names the inventory's resource ids end with, and each identity's grant on its own key only, with
the role the inventory names. A reference deployment the app reports findings against on day one is no reference."""

from __future__ import annotations

from pathlib import Path

from shared.inventory import load_inventory
from shared.model import LifetimeAction, RotationActionType, RotationPolicy
from tests.deploy.templates import INFRA, ROOT, body, grants, resources

VAULT = INFRA / "reference" / "vault.bicep"


def reference_keys():
    return {k.name: k for k in load_inventory(ROOT / "inventory" / "reference.yaml", {}).keys}


def policy_in_template(declaration: dict) -> RotationPolicy:
    policy = body(declaration)["properties"]["rotationPolicy"]
    actions = []
    for action in policy["lifetimeActions"]:
        trigger = action["trigger"]
        actions.append(
            LifetimeAction(
                RotationActionType(action["action"]["type"].capitalize()),
                time_after_create=trigger.get("timeAfterCreate"),
                time_before_expiry=trigger.get("timeBeforeExpiry"),
            )
        )
    return RotationPolicy(policy.get("attributes", {}).get("expiryTime"), tuple(actions))


def template_keys() -> dict[str, dict]:
    return {body(k)["name"]: k for k in resources(VAULT, "Microsoft.KeyVault/vaults/keys").values()}


def test_the_vault_is_premium_rbac_soft_delete_90_days_and_purge_protected():
    (vault,) = resources(VAULT, "Microsoft.KeyVault/vaults").values()
    props = body(vault)["properties"]
    assert props["sku"]["name"] == "premium"
    assert props["enableRbacAuthorization"] is True
    assert (props["enableSoftDelete"], props["softDeleteRetentionInDays"]) == (True, 90)
    assert props["enablePurgeProtection"] is True


def test_the_keys_are_the_inventorys_with_its_rotation_policies():
    wanted = reference_keys()
    made = template_keys()
    assert set(made) == set(wanted)
    for name, declaration in made.items():
        props = body(declaration)["properties"]
        key = wanted[name]
        assert (props["kty"], props["keySize"], tuple(props["keyOps"])) == (key.kty, key.size, key.ops), name
        assert policy_in_template(declaration) == key.rotation.to_policy(), name
    assert policy_in_template(made["mysql-encryption-key"]).expires_in is None  # MySQL: no expiry, ever


def test_each_consumer_identity_holds_the_inventorys_role_on_its_own_key_only():
    wanted = reference_keys()
    made = resources(VAULT, "Microsoft.ManagedIdentity/userAssignedIdentities")
    identities = {symbol: body(identity)["name"] for symbol, identity in made.items()}
    assert set(identities.values()) == {Path(k.identity.resource_id).name for k in wanted.values()}
    key_symbols = {symbol: body(k)["name"] for symbol, k in resources(VAULT, "Microsoft.KeyVault/vaults/keys").items()}
    granted = [g for g in grants() if g.file == "reference/vault.bicep"]
    assert len(granted) == len(wanted)
    assignments = resources(VAULT, "Microsoft.Authorization/roleAssignments")
    for grant, declaration in zip(granted, assignments.values(), strict=True):
        key = wanted[key_symbols[grant.scope]]
        assert grant.role == key.role.guid, key.name
        principal = body(declaration)["properties"]["principalId"]["operator"]["operands"]["operand_1"]
        assert identities[principal] == Path(key.identity.resource_id).name, key.name
