"""GET /api/keys' handler over fakes: a compliant reference deployment has no findings; each drift is named."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from shared import roles
from shared.errors import ServiceUnavailable
from shared.model import LifetimeAction, RotationActionType, RotationPolicy, Severity
from tests.fakes.access import FakeAccessControl
from tests.fakes.keyvault import FakeKeyVault

ROOT = Path(__file__).resolve().parents[3]
VAULT_URL = "https://kv-cmk-reference.vault.azure.net"


def test_compliant_reference_deployment_has_no_findings(world):
    report = world.report()
    assert [k.name for k in report.keys] == ["aks-encryption-key", "mysql-encryption-key"]
    assert report.findings == []
    body = report.to_json()
    assert body["summary"] == {"keys": 2, "compliant": 2, "findings": {}}
    aks = body["keys"][0]
    assert aks["kty"] == "RSA-HSM" and aks["size"] == 2048 and sorted(aks["ops"]) == ["unwrapKey", "wrapKey"]
    assert aks["enabled"] is True and aks["version"] and aks["key_id"].endswith(aks["version"])
    assert aks["rotation_policy"]["expires_in"] == "P180D"


def _recreate(world, name, **overrides):
    """Replace the key's only version with one that differs from the inventory."""
    key = world.key(name)
    args = {"kty": key.kty, "size": key.size, "ops": key.ops, "expires": key.rotation.expiry_for(world.clock.now())}
    args.update(overrides)
    fresh = FakeKeyVault(world.clock)
    for other in world.inventory.keys:
        if other.name == name:
            fresh.create_key(other.ref, **args)
        else:
            fresh.create_key(
                other.ref,
                kty=other.kty,
                size=other.size,
                ops=other.ops,
                expires=other.rotation.expiry_for(world.clock.now()),
            )
        fresh.set_rotation_policy(other.ref, other.rotation.to_policy())
    world.vault = fresh


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (lambda w: setattr(w, "vault", FakeKeyVault(w.clock)), "KeyMissing"),
        (lambda w: _recreate(w, "mysql-encryption-key", kty="RSA"), "KeyTypeMismatch"),
        (lambda w: _recreate(w, "mysql-encryption-key", size=3072), "KeySizeMismatch"),
        (lambda w: _recreate(w, "mysql-encryption-key", ops=("wrapKey", "unwrapKey", "decrypt")), "KeyOpsExcess"),
        (lambda w: _recreate(w, "mysql-encryption-key", ops=("unwrapKey",)), "KeyOpsMissing"),
        (lambda w: _recreate(w, "aks-encryption-key", expires=None), "KeyNoExpiry"),
        (
            lambda w: _recreate(w, "aks-encryption-key", expires=w.clock.now() + timedelta(days=400)),
            "KeyExpiryTooLate",
        ),
    ],
    ids=["missing", "kty", "size", "ops-excess", "ops-missing", "no-expiry", "expiry-too-late"],
)
def test_key_attribute_drift_is_named(world, drift, expected):
    drift(world)
    drifted = {k.name for k in world.report().keys if not k.compliant}
    assert expected in world.codes("mysql-encryption-key") | world.codes("aks-encryption-key")
    assert drifted and drifted <= {"mysql-encryption-key", "aks-encryption-key"}


def test_disabled_current_version(world):
    key = world.key("aks-encryption-key")
    world.vault.update_version(key.ref, world.vault.get_key(key.ref).version, enabled=False)
    finding = next(f for f in world.report().findings if f.code == "KeyDisabled")
    assert finding.severity == Severity.CRITICAL and finding.key == "aks-encryption-key"


@pytest.mark.parametrize(
    ("days", "expected", "absent"),
    [
        (95, {"RotationOverdue"}, {"KeyNearExpiry", "KeyExpired"}),
        (160, {"RotationOverdue", "KeyNearExpiry"}, {"KeyExpired"}),
        (181, {"RotationOverdue", "KeyExpired"}, {"KeyNearExpiry"}),
        (80, set(), {"RotationOverdue", "KeyNearExpiry", "KeyExpired"}),
    ],
)
def test_time_based_findings(world, days, expected, absent):
    world.clock.advance(timedelta(days=days))
    codes = world.codes("aks-encryption-key")
    assert expected <= codes
    assert not (absent & codes)


def test_missing_and_mismatched_rotation_policy(world):
    aks, mysql = world.key("aks-encryption-key"), world.key("mysql-encryption-key")
    world.vault._key(aks.ref).policy = None  # as Key Vault reports a key that never had a policy
    world.vault.set_rotation_policy(
        mysql.ref,
        RotationPolicy(
            "P180D",
            (
                LifetimeAction(RotationActionType.ROTATE, "P60D", None),
                LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),
            ),
        ),
    )
    assert "RotationPolicyMissing" in world.codes("aks-encryption-key")
    mismatch = [f for f in world.report().findings if f.code == "RotationPolicyMismatch"]
    assert [(f.key, f.detail["field"]) for f in mismatch] == [("mysql-encryption-key", "rotate_after")]


def test_policy_rotating_before_expiry_is_equivalent(world):
    aks = world.key("aks-encryption-key")
    world.vault.set_rotation_policy(
        aks.ref,
        RotationPolicy(
            "P180D",
            (
                LifetimeAction(RotationActionType.ROTATE, None, "P90D"),
                LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),
            ),
        ),
    )
    assert world.codes("aks-encryption-key") == set()


def test_stranger_with_key_use_is_extra_access(world):
    stranger = str(uuid.uuid4())
    world.grant(world.key("aks-encryption-key").scope, stranger, roles.CRYPTO_USER)
    finding = next(f for f in world.report().findings if f.code == "AccessExtra")
    assert finding.key == "aks-encryption-key" and finding.severity == Severity.HIGH
    assert finding.detail["principal_id"] == stranger and finding.detail["role"] == "Key Vault Crypto User"
    assert finding.detail["inherited"] is False


def test_one_service_identity_on_the_other_key_is_extra_access(world):
    aks, mysql = world.key("aks-encryption-key"), world.key("mysql-encryption-key")
    world.grant(mysql.scope, aks.identity.principal_id)
    extra = [f for f in world.report().findings if f.code == "AccessExtra"]
    assert [(f.key, f.detail["principal_id"]) for f in extra] == [("mysql-encryption-key", aks.identity.principal_id)]


def test_consumer_without_its_role_is_missing_access(world):
    mysql = world.key("mysql-encryption-key")
    for a in world.access.list_assignments(mysql.scope):
        world.access.delete_assignment(a.id)
    finding = next(f for f in world.report().findings if f.code == "AccessMissing")
    assert finding.key == "mysql-encryption-key" and finding.severity == Severity.CRITICAL


def test_consumer_with_broader_role_is_too_broad(world):
    aks = world.key("aks-encryption-key")
    for a in world.access.list_assignments(aks.scope):
        world.access.delete_assignment(a.id)
    world.grant(aks.scope, aks.identity.principal_id, roles.CRYPTO_USER)
    codes = world.codes("aks-encryption-key")
    assert "AccessTooBroad" in codes and "AccessMissing" not in codes


def test_vault_scope_grant_is_too_broad_for_its_key_and_extra_on_the_other(world):
    aks = world.key("aks-encryption-key")
    world.grant(aks.vault.resource_id, aks.identity.principal_id)
    assert "AccessTooBroad" in world.codes("aks-encryption-key")
    extra = [f for f in world.report().findings if f.code == "AccessExtra"]
    assert [(f.key, f.detail["inherited"]) for f in extra] == [("mysql-encryption-key", True)]


def test_assignment_of_a_role_that_does_not_exist_grants_nothing_and_is_named(world):
    world.access.create_assignment(
        world.key("aks-encryption-key").scope,
        f"/subscriptions/{world.inventory.vaults[0].subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        + str(uuid.uuid4()),
        str(uuid.uuid4()),
        "ServicePrincipal",
    )
    assert world.codes("aks-encryption-key") == {"RoleDefinitionMissing"}


def test_reader_role_is_not_key_use(world):
    world.grant(world.key("aks-encryption-key").scope, str(uuid.uuid4()), roles.READER)
    assert world.codes("aks-encryption-key") == set()


def test_app_identity_and_break_glass_are_allowed(world):
    aks = world.key("aks-encryption-key")
    world.grant(aks.vault.resource_id, world.inventory.app_identity, roles.CRYPTO_OFFICER)
    world.grant(aks.scope, world.inventory.break_glass[0].principal_id, roles.CRYPTO_USER)
    report = world.report()
    assert [f.code for f in report.findings] == ["BreakGlassAccess"]
    assert report.findings[0].severity == Severity.INFO
    assert all(k.compliant for k in report.keys)


def test_unreadable_access_is_a_finding_not_a_failure(world):
    class BrokenAccess(FakeAccessControl):
        def list_assignments(self, scope):
            raise ServiceUnavailable("ARM unavailable")

    world.access = BrokenAccess()
    report = world.report()
    assert {f.code for f in report.findings} == {"AccessUnreadable"}
    assert len(report.keys) == 2
