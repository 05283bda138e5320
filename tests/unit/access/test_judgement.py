"""Who can use a key, judged from role definitions (as ARM evaluates them), group grants, and the vault's permission
model, over fakes. The same judgement runs over the emulators in tests/integration/test_compliance_over_emulators."""

from __future__ import annotations

import uuid

import pytest

from shared import roles
from shared.errors import ServiceUnavailable
from shared.model import Severity
from shared.roles.catalog import RoleCatalog
from shared.roles.definitions import KEYS
from tests.fakes.access import FakeAccessControl

CONTROL_PLANE = [roles.OWNER, roles.CONTRIBUTOR, roles.ARM_READER, roles.USER_ACCESS_ADMINISTRATOR]


def _only_consumer_grant_removed(world, key_name: str):
    key = world.key(key_name)
    for a in world.access.list_assignments(key.scope):
        if a.principal_id == key.identity.principal_id:
            world.access.delete_assignment(a.id)
    return key


def _assign(world, scope: str, guid: str, principal: str, principal_type: str = "ServicePrincipal"):
    sub = world.inventory.vaults[0].subscription_id
    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    return world.access.create_assignment(scope, role_id, principal, principal_type)


@pytest.mark.parametrize("role", CONTROL_PLANE, ids=lambda r: r.name)
def test_control_plane_roles_at_subscription_scope_grant_no_key_use(world, role):
    subscription = f"/subscriptions/{world.inventory.vaults[0].subscription_id}"
    world.grant(subscription, str(uuid.uuid4()), role)
    world.grant(subscription, world.key("aks-encryption-key").identity.principal_id, role)
    assert world.report().findings == []


def test_custom_role_with_wrap_and_unwrap_is_key_use_for_anyone_else(world):
    guid = world.access.define_role("wrapper", data_actions=[KEYS + "wrap/action", KEYS + "unwrap/action"])
    stranger = str(uuid.uuid4())
    _assign(world, world.key("mysql-encryption-key").scope, guid, stranger)
    [extra] = [f for f in world.report().findings if f.code == "AccessExtra"]
    assert extra.key == "mysql-encryption-key" and extra.severity == Severity.HIGH
    assert extra.detail["principal_id"] == stranger and extra.detail["role"] == "wrapper"
    assert extra.detail["operations"] == ["unwrap", "wrap"]


def test_consumer_on_a_custom_role_with_exactly_read_wrap_unwrap_is_compliant(world):
    key = _only_consumer_grant_removed(world, "aks-encryption-key")
    guid = world.access.define_role(
        "cmk consumer", data_actions=[KEYS + "read", KEYS + "wrap/action", KEYS + "unwrap/action"]
    )
    _assign(world, key.scope, guid, key.identity.principal_id)
    assert world.codes("aks-encryption-key") == set()


def test_consumer_on_a_custom_role_with_more_is_compliant_but_too_broad(world):
    key = _only_consumer_grant_removed(world, "aks-encryption-key")
    guid = world.access.define_role("all keys", data_actions=["Microsoft.KeyVault/vaults/keys/*"])
    _assign(world, key.scope, guid, key.identity.principal_id)
    findings = [f for f in world.report().findings if f.key == "aks-encryption-key"]
    assert [f.code for f in findings] == ["AccessTooBroad"]
    assert "decrypt" in findings[0].message and findings[0].severity == Severity.WARNING


def test_not_data_actions_take_away_what_a_wildcard_gives(world):
    guid = world.access.define_role(
        "key admin, no use",
        data_actions=["Microsoft.KeyVault/vaults/*"],
        not_data_actions=[KEYS + a + "/action" for a in ("wrap", "unwrap", "encrypt", "decrypt", "sign", "verify")]
        + [KEYS + "release/action"],
    )
    _assign(world, world.key("aks-encryption-key").vault.resource_id, guid, str(uuid.uuid4()))
    assert world.report().findings == []


def test_consumer_split_over_two_roles_is_not_missing(world):
    key = _only_consumer_grant_removed(world, "aks-encryption-key")
    reader = world.access.define_role("reads", data_actions=[KEYS + "read"])
    wrapper = world.access.define_role("wraps", data_actions=[KEYS + "wrap/action", KEYS + "unwrap/action"])
    _assign(world, key.scope, reader, key.identity.principal_id)
    _assign(world, key.scope, wrapper, key.identity.principal_id)
    assert world.codes("aks-encryption-key") == set()


def test_consumer_without_read_is_missing_exactly_read(world):
    key = _only_consumer_grant_removed(world, "mysql-encryption-key")
    wrapper = world.access.define_role("wraps", data_actions=[KEYS + "wrap/action", KEYS + "unwrap/action"])
    _assign(world, key.scope, wrapper, key.identity.principal_id)
    [missing] = [f for f in world.report().findings if f.code == "AccessMissing"]
    assert missing.detail["missing"] == ["read"] and missing.severity == Severity.CRITICAL


def test_group_with_key_use_is_its_own_finding(world):
    group = str(uuid.uuid4())
    world.access.create_assignment(
        world.key("aks-encryption-key").scope, world.role_id(roles.CRYPTO_USER), group, "Group"
    )
    findings = [f for f in world.report().findings if f.key == "aks-encryption-key"]
    assert [f.code for f in findings] == ["AccessViaGroup"]
    assert findings[0].detail["principal_id"] == group and "Microsoft Graph" in findings[0].message


def test_consumer_covered_only_by_a_group_is_unverified_not_missing(world):
    key = _only_consumer_grant_removed(world, "mysql-encryption-key")
    group = str(uuid.uuid4())
    world.access.create_assignment(
        key.scope, world.role_id(roles.CRYPTO_SERVICE_ENCRYPTION_USER), group, "ForeignGroup"
    )
    codes = world.codes("mysql-encryption-key")
    assert "AccessMissing" not in codes
    assert codes == {"AccessViaGroup", "AccessUnverified"}
    [unverified] = [f for f in world.report().findings if f.code == "AccessUnverified"]
    assert [g["principal_id"] for g in unverified.detail["possible_grants"]] == [group]
    assert "group membership needs Microsoft Graph" in unverified.message


def test_a_group_that_lacks_what_the_consumer_misses_does_not_hide_the_outage(world):
    key = _only_consumer_grant_removed(world, "mysql-encryption-key")
    signer = world.access.define_role("signs", data_actions=[KEYS + "sign/action"])
    _assign(world, key.scope, signer, str(uuid.uuid4()), "Group")
    assert {"AccessMissing", "AccessViaGroup"} <= world.codes("mysql-encryption-key")


def test_unreadable_role_is_reported_and_never_claims_an_outage(world):
    class FlakyRoles(FakeAccessControl):
        def get_role_definition(self, role_definition_id):
            raise ServiceUnavailable("ARM unavailable")

    flaky = FlakyRoles()
    for a in world.access.all():
        flaky.create_assignment(a.scope, a.role_definition_id, a.principal_id, a.principal_type)
    world.access = flaky
    codes = world.codes("aks-encryption-key")
    assert "RoleUnreadable" in codes and "AccessUnverified" in codes and "AccessMissing" not in codes


def test_each_role_definition_is_read_once_per_catalog(world):
    for key in world.inventory.keys:
        for _ in range(5):
            world.grant(key.scope, str(uuid.uuid4()), roles.CRYPTO_USER)
    catalog = RoleCatalog(world.access, world.clock)
    ports = {**world.ports(), "roles": catalog}
    from functions.compliance.report import report_keys

    report_keys(**ports)
    report_keys(**ports)
    assert catalog.reads == 2  # Crypto Service Encryption User and Crypto User, whatever the number of assignments


def test_catalog_rereads_after_its_ttl_so_an_edited_custom_role_is_seen(world):
    from datetime import timedelta

    catalog = RoleCatalog(world.access, world.clock, ttl=timedelta(minutes=10))
    guid = roles.CRYPTO_USER.guid
    catalog.get(guid)
    catalog.get(guid)
    world.clock.advance(timedelta(minutes=11))
    catalog.get(guid)
    assert catalog.reads == 2


def test_access_policy_vault_is_critical_and_its_policies_are_judged(world):
    aks, mysql = world.key("aks-encryption-key"), world.key("mysql-encryption-key")
    vault_id = aks.vault.resource_id
    world.vaults.change(vault_id, rbac_authorization=False)
    world.vaults.add_access_policy(vault_id, aks.identity.principal_id, ["get", "wrapKey", "unwrapKey"])
    stranger = str(uuid.uuid4())
    world.vaults.add_access_policy(vault_id, stranger, ["Get", "Decrypt"])
    report = world.report()
    by_key = {k.name: {f.code for f in k.findings} for k in report.keys}
    # An access policy reaches every key in its vault: AKS's identity can use its key (too broadly: the MySQL key
    # too, where it is extra), and its RBAC assignment is ignored, as Key Vault ignores RBAC on such a vault.
    assert by_key["aks-encryption-key"] == {"VaultAccessPolicyModel", "AccessExtra", "AccessTooBroad"}
    # MySQL's identity holds only an RBAC assignment, which this vault ignores: it has no access at all.
    assert by_key["mysql-encryption-key"] == {"VaultAccessPolicyModel", "AccessExtra", "AccessMissing"}
    model = next(f for f in report.findings if f.code == "VaultAccessPolicyModel")
    assert model.severity == Severity.CRITICAL
    extra = {(f.key, f.detail["principal_id"]) for f in report.findings if f.code == "AccessExtra"}
    assert extra == {(aks.name, stranger), (mysql.name, stranger), (mysql.name, aks.identity.principal_id)}


def test_access_policy_all_is_too_broad_for_the_consumer(world):
    aks = world.key("aks-encryption-key")
    world.vaults.change(aks.vault.resource_id, rbac_authorization=False)
    world.vaults.add_access_policy(aks.vault.resource_id, aks.identity.principal_id, ["all"])
    codes = world.codes("aks-encryption-key")
    assert "AccessTooBroad" in codes and "AccessMissing" not in codes


@pytest.mark.parametrize(
    ("change", "code", "severity"),
    [
        ({"soft_delete": False}, "VaultSoftDeleteDisabled", Severity.CRITICAL),
        ({"purge_protection": False}, "VaultPurgeProtectionDisabled", Severity.CRITICAL),
        ({"soft_delete_retention_days": 7}, "VaultRetentionTooShort", Severity.HIGH),
    ],
)
def test_vault_protection_against_loss(world, change, code, severity):
    world.vaults.change(world.inventory.vaults[0].resource_id, **change)
    found = [f for f in world.report().findings if f.code == code]
    assert {f.key for f in found} == {k.name for k in world.inventory.keys}
    assert {f.severity for f in found} == {severity}


def test_unreadable_vault_is_a_finding_and_access_is_still_judged(world):
    class NoVaults:
        def get_vault(self, resource_id):
            raise ServiceUnavailable("ARM unavailable")

    world.vaults = NoVaults()
    world.grant(world.key("aks-encryption-key").scope, str(uuid.uuid4()), roles.CRYPTO_USER)
    assert world.codes("aks-encryption-key") == {"VaultUnreadable", "AccessExtra"}
    assert world.codes("mysql-encryption-key") == {"VaultUnreadable"}
