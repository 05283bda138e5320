"""Least privilege over fakes, rule by rule: what the plan says, in which order, and what enforce mode leaves."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from functions.access.plan import GrantRole, RemoveAssignment, Report, TrimKeyOps
from functions.access.reconcile import (
    CONSUMER_LOST_ALERT,
    FOLLOW_UP_SECONDS,
    RBAC_PROPAGATION,
    REMEDIATED_ALERT,
    VIOLATION_ALERT,
    follow_up_check,
    reconcile_key,
)
from shared import roles
from shared.errors import MalformedMessage, ServiceUnavailable
from shared.inventory import Mode
from shared.roles.definitions import CONSUMER_NEEDS

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


def _reconcile(world, name: str, **overrides):
    ports = {**world.access_ports(), "access_checks": world.access_checks, **overrides}
    return reconcile_key(world.key(name), trigger="test", **ports)


def _key_use_at(world, name: str) -> dict[str, set[str]]:
    """principal -> key operations it holds at the key's own scope."""
    key = world.key(name)
    held: dict[str, set[str]] = {}
    for a in world.access.list_assignments(key.scope):
        if a.scope.lower() != key.scope.lower():
            continue
        definition = world.access.get_role_definition(a.role_definition_id)
        held.setdefault(a.principal_id.lower(), set()).update(definition.key_operations())
    return {p: ops for p, ops in held.items() if ops}


def _audit(world):
    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)
    return world


def test_a_compliant_key_plans_nothing(world):
    outcome = _reconcile(world, AKS)
    assert outcome.status == "compliant" and world.alerts.published == []


def test_a_stranger_at_key_scope_is_removed_alerted_recorded_and_followed_up(world):
    stranger = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_USER)
    outcome = _reconcile(world, MYSQL)
    assert outcome.status == "remediated"
    assert stranger not in _key_use_at(world, MYSQL)
    assert [a.type for a in world.alerts.published] == [VIOLATION_ALERT, REMEDIATED_ALERT]
    assert [(r.action, r.outcome) for r in world.audit.all()] == [("access-remove", "removed")]
    [follow_up] = world.access_checks.messages
    assert follow_up.delay_seconds == FOLLOW_UP_SECONDS and follow_up.message["key"] == MYSQL
    assert _reconcile(world, MYSQL).status == "compliant"


def test_audit_mode_reports_the_same_plan_and_changes_nothing(world):
    stranger = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_USER)
    outcome = _reconcile(_audit(world), MYSQL)
    assert outcome.status == "reported"
    assert [type(s) for s in outcome.plan.steps] == [RemoveAssignment]
    assert stranger in _key_use_at(world, MYSQL)
    assert [a.type for a in world.alerts.published] == [VIOLATION_ALERT]
    assert [(r.action, r.outcome) for r in world.audit.all()] == [("access-report", "reported")]


def test_a_broad_consumer_gets_the_minimal_role_first_and_only_then_loses_the_broad_one(world):
    key = world.key(AKS)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    world.grant(key.scope, key.identity.principal_id, roles.CRYPTO_USER)
    outcome = _reconcile(world, AKS)
    assert [type(s) for s in outcome.plan.changes] == [GrantRole]
    [deferred] = outcome.plan.deferred
    assert deferred.step.keeps_consumer_access_via and deferred.until is None  # no grant yet when planned
    world.clock.advance(timedelta(seconds=RBAC_PROPAGATION.total_seconds() + 1))
    outcome = _reconcile(world, AKS)
    assert [type(s) for s in outcome.plan.changes] == [RemoveAssignment]
    assert _key_use_at(world, AKS) == {key.identity.principal_id: set(CONSUMER_NEEDS)}


def test_a_lost_consumer_grant_is_restored_and_alerted_as_such(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    _reconcile(world, MYSQL)
    assert _key_use_at(world, MYSQL) == {key.identity.principal_id: set(CONSUMER_NEEDS)}
    lost = next(a for a in world.alerts.published if a.type == CONSUMER_LOST_ALERT)
    assert lost.data["restored"] is True and "restored" in lost.message


def test_a_consumer_revoked_on_purpose_is_never_granted_back_and_a_regrant_is_removed(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    world.revocations.revoke(MYSQL, key.identity.principal_id, at=world.clock.now())
    assert _reconcile(world, MYSQL).status == "compliant"
    assert _key_use_at(world, MYSQL) == {}
    world.grant(key.scope, key.identity.principal_id)  # someone grants it back by hand
    outcome = _reconcile(world, MYSQL)
    assert [type(s) for s in outcome.plan.changes] == [RemoveAssignment]
    assert "revoked" in outcome.plan.changes[0].reason and _key_use_at(world, MYSQL) == {}


def test_the_cross_rule_takes_the_other_consumers_grant_away(world):
    aks, mysql = world.key(AKS), world.key(MYSQL)
    world.grant(mysql.scope, aks.identity.principal_id, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    outcome = _reconcile(world, MYSQL)
    [removal] = outcome.plan.changes
    assert "cross rule" in removal.reason
    assert aks.identity.principal_id not in _key_use_at(world, MYSQL)
    assert aks.identity.principal_id in _key_use_at(world, AKS)  # its own key untouched


@pytest.mark.parametrize("remove_inherited", [False, True])
def test_inherited_grants_are_reported_unless_the_policy_allows_removing_them(world, remove_inherited):
    stranger = str(uuid.uuid4())
    assignment = world.grant(world.key(AKS).vault.resource_id, stranger, roles.CRYPTO_USER)
    policy = dataclasses.replace(world.inventory.policy, remove_inherited_grants=remove_inherited)
    world.inventory = dataclasses.replace(world.inventory, policy=policy)
    outcome = _reconcile(world, AKS)
    still_there = any(a.id == assignment.id for a in world.access.all())
    assert still_there is not remove_inherited
    kinds = {type(s) for s in outcome.plan.steps}
    assert kinds == ({RemoveAssignment} if remove_inherited else {Report})


def test_an_inherited_grant_of_another_keys_consumer_is_never_removed_from_here(world):
    aks = world.key(AKS)
    world.grant(aks.vault.resource_id, aks.identity.principal_id, roles.CRYPTO_USER)
    policy = dataclasses.replace(world.inventory.policy, remove_inherited_grants=True)
    world.inventory = dataclasses.replace(world.inventory, policy=policy)
    outcome = _reconcile(world, MYSQL)
    assert [type(s) for s in outcome.plan.steps] == [Report]


def test_key_ops_beyond_the_inventorys_are_trimmed_from_every_enabled_version(world):
    key = world.key(AKS)
    version = world.vault.get_key(key.ref).version
    world.vault.update_version(key.ref, version, ops=("wrapKey", "unwrapKey", "decrypt", "sign"))
    outcome = _reconcile(world, AKS)
    [trim] = outcome.plan.changes
    assert isinstance(trim, TrimKeyOps) and trim.removed == ("decrypt", "sign")
    assert sorted(world.vault.get_key(key.ref).ops) == ["unwrapKey", "wrapKey"]


def test_control_plane_roles_and_unreadable_roles_are_never_touched(world):
    subscription = f"/subscriptions/{world.inventory.vaults[0].subscription_id}"
    owners = [world.grant(subscription, str(uuid.uuid4()), role) for role in (roles.OWNER, roles.CONTRIBUTOR)]

    unknown = world.access.define_role("temporarily unreadable", data_actions=["Microsoft.KeyVault/vaults/keys/*"])
    stranger = str(uuid.uuid4())
    sub = world.inventory.vaults[0].subscription_id
    world.access.create_assignment(
        world.key(AKS).scope,
        f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{unknown}",
        stranger,
        "ServicePrincipal",
    )

    class FlakyRoles:
        def __init__(self, inner):
            self.inner = inner

        def get(self, role_definition_id):
            if unknown in role_definition_id:
                raise ServiceUnavailable("ARM unavailable")
            return self.inner.get(role_definition_id)

    outcome = _reconcile(world, AKS, roles=FlakyRoles(world.access_ports()["roles"]))
    assert {type(s) for s in outcome.plan.steps} == {Report}
    assert stranger in {a.principal_id for a in world.access.all()}
    assert all(any(a.id == o.id for a in world.access.all()) for o in owners)


def test_an_access_policy_vault_is_reported_not_changed(world):
    world.vaults.change(world.key(AKS).vault.resource_id, rbac_authorization=False)
    outcome = _reconcile(world, AKS)
    assert outcome.status == "reported" and isinstance(outcome.plan.steps[-1], Report)


def test_the_follow_up_probes_the_apps_access_and_reconciles_again(world):
    stranger = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_USER)
    outcome = follow_up_check({"version": 1, "key": MYSQL, "trigger": "event:x"}, **world.access_ports())
    assert outcome.status == "remediated" and outcome.executed
    assert world.access_checks.messages == []  # a follow-up schedules no further follow-up
    with pytest.raises(MalformedMessage):
        follow_up_check({"key": "no-such-key"}, **world.access_ports())
