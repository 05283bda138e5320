"""The app's judgement on a Managed HSM over fakes: compliance's HSM checks, least privilege on local RBAC, and the
scope translation the adapter and the fake share."""

from __future__ import annotations

import uuid

import pytest

from functions.access.reconcile import reconcile_key
from shared import roles
from shared.local_rbac import HsmScopes

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/hsm"


def test_scopes_translate_both_ways_and_refuse_what_local_rbac_lacks():
    scopes = HsmScopes(RID)
    assert scopes.local(RID) == "/" and scopes.local(RID + "/keys") == "/keys"
    assert scopes.local(RID.upper() + "/keys/k1/") == "/keys/k1"
    assert scopes.arm("/") == RID and scopes.arm("/keys/k1") == RID + "/keys/k1"
    made = scopes.assignment_id("/keys/k1", "abc")
    assert made == RID + "/keys/k1/providers/Microsoft.Authorization/roleAssignments/abc"
    assert scopes.split_assignment_id(made) == ("/keys/k1", "abc")
    assert scopes.split_assignment_id(scopes.assignment_id("/", "n")) == ("/", "n")
    for bad in (RID + "/secrets/x", RID + "/keys/k/versions/v", RID + "2/keys/k"):
        with pytest.raises(ValueError):
            scopes.local(bad)


def test_the_reference_deployment_on_a_managed_hsm_is_compliant(hsm_world):
    report = hsm_world.report()
    assert [f.code for f in report.findings] == []
    assert all(k.compliant for k in report.keys)


def test_role_managers_at_the_root_are_named_unless_break_glass(hsm_world):
    [hsm] = hsm_world.inventory.vaults
    stranger = str(uuid.uuid4())
    hsm_world.grant(hsm.resource_id, stranger, roles.HSM_CRYPTO_OFFICER)
    officer = next(p.principal_id for p in hsm_world.inventory.break_glass if p.principal_type == "User")
    hsm_world.grant(hsm.resource_id, officer, roles.HSM_ADMINISTRATOR)
    findings = [f for f in hsm_world.report().findings if f.key == AKS]
    by_code = {f.code: f for f in findings}
    assert by_code["HsmRoleManager"].detail["principal_id"] == stranger
    assert by_code["HsmRoleManager"].detail["role"] == "Managed HSM Crypto Officer"
    assert by_code["BreakGlassHsmRoleManager"].detail["principal_id"] == officer
    # a Crypto Officer at /keys/<name> is not at the root: it is judged as key access (none: it uses no key)
    hsm_world.grant(hsm_world.key(MYSQL).scope, str(uuid.uuid4()), roles.HSM_CRYPTO_OFFICER)
    assert "HsmRoleManager" in hsm_world.codes(MYSQL)


def test_versions_near_and_at_the_cap(hsm_world):
    key = hsm_world.key(AKS)
    for _ in range(89):
        hsm_world.vault.rotate_key(key.ref)
    assert "HsmVersionsNearCap" in hsm_world.codes(AKS)
    for _ in range(10):
        hsm_world.vault.rotate_key(key.ref)
    codes = hsm_world.codes(AKS)
    assert "HsmVersionCapReached" in codes and "HsmVersionsNearCap" not in codes
    assert "HsmVersionCapReached" not in hsm_world.codes(MYSQL)


def test_purge_protection_off_on_the_hsm_is_critical(hsm_world):
    [hsm] = hsm_world.inventory.vaults
    hsm_world.vaults.change(hsm.resource_id, purge_protection=False)
    assert "VaultPurgeProtectionDisabled" in hsm_world.codes(AKS)


def test_a_strangers_crypto_user_at_the_key_is_removed_and_the_consumer_kept(hsm_world):
    key = hsm_world.key(MYSQL)
    stranger = str(uuid.uuid4())
    hsm_world.grant(key.scope, stranger, roles.HSM_CRYPTO_USER)
    assert "AccessExtra" in hsm_world.codes(MYSQL)
    outcome = reconcile_key(key, trigger="test", access_checks=hsm_world.access_checks, **hsm_world.access_ports())
    assert outcome.status == "remediated"
    held = {a.principal_id for a in hsm_world.local_rbac.list_assignments(key.scope)}
    assert stranger not in held and key.identity.principal_id in held
    assert hsm_world.codes(MYSQL) == set()


def test_a_missing_consumer_grant_is_made_in_local_rbac_at_the_key(hsm_world):
    key = hsm_world.key(AKS)
    for a in hsm_world.local_rbac.list_assignments(key.scope):
        if a.principal_id == key.identity.principal_id:
            hsm_world.local_rbac.delete_assignment(a.id)
    assert "AccessMissing" in hsm_world.codes(AKS)
    reconcile_key(key, trigger="test", access_checks=hsm_world.access_checks, **hsm_world.access_ports())
    [made] = [
        a for a in hsm_world.local_rbac.list_assignments(key.scope) if a.principal_id == key.identity.principal_id
    ]
    assert made.scope == key.scope and made.role_guid == roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid


def test_a_consumers_broader_grant_goes_once_its_minimal_grant_has_been_seen_for_the_propagation_time(hsm_world):
    """Local RBAC reports no creation time: the app waits from when it first saw the minimal grant (a claim), so the
    removal is deferred once, then carried out, never deferred forever nor done before the minimal grant applies."""
    from datetime import timedelta

    from functions.access.reconcile import RBAC_PROPAGATION

    key = hsm_world.key(AKS)
    consumer = key.identity.principal_id
    hsm_world.grant(key.scope, consumer, roles.HSM_CRYPTO_USER)
    ports = {**hsm_world.access_ports(), "access_checks": hsm_world.access_checks, "claims": hsm_world.claims}
    first = reconcile_key(key, trigger="test", **ports)
    assert first.status == "deferred" and first.plan.deferred[0].until is not None
    assert roles.HSM_CRYPTO_USER.guid in {a.role_guid for a in hsm_world.local_rbac.list_assignments(key.scope)}
    hsm_world.clock.advance(RBAC_PROPAGATION + timedelta(seconds=1))
    second = reconcile_key(key, trigger="test", **ports)
    assert second.status == "remediated"
    held = {(a.principal_id, a.role_guid) for a in hsm_world.local_rbac.list_assignments(key.scope)}
    assert (consumer, roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid) in held
    assert (consumer, roles.HSM_CRYPTO_USER.guid) not in held
