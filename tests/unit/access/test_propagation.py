"""No lockout while Key Vault applies RBAC changes (review H2, H3), no grant for a principal revoked meanwhile (M1),
and no key use taken from the identity a consumer really uses: regression tests over the fakes."""

from __future__ import annotations

import uuid
from datetime import timedelta

from functions.access.plan import Deferred, GrantRole, RemoveAssignment, Report
from functions.access.reconcile import RBAC_PROPAGATION, follow_up_check, reconcile_key
from shared import roles
from shared.errors import Forbidden
from shared.model import ConsumerKind

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
FOLLOW_UP_DELAY = 3  # the local run's short real delay


def _reconcile(world, name: str, **overrides):
    ports = {
        **world.access_ports(),
        "access_checks": world.access_checks,
        "follow_up_delay": FOLLOW_UP_DELAY,
        **overrides,
    }
    return reconcile_key(world.key(name), trigger="test", **ports)


def _follow_up(world, name: str):
    ports = {**world.access_ports(), "access_checks": world.access_checks, "follow_up_delay": FOLLOW_UP_DELAY}
    return follow_up_check({"version": 1, "key": name, "trigger": "event:x"}, **ports)


def _only_group_grant(world, name: str):
    """The consumer reaches its key only through a group (a 'platform identities' group) at the key."""
    key = world.key(name)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    group = str(uuid.uuid4())
    made = world.access.create_assignment(key.scope, world.role_id(roles.CRYPTO_USER), group, "Group")
    return key, made


class RefusingGrants:
    """The fake ARM, refusing every new assignment (the ABAC condition on Data Access Administrator, say)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def create_assignment(self, *args, **kwargs):
        raise Forbidden("the condition on the app's role assignment does not allow this grant")


def _ids(world) -> set[str]:
    return {a.id.lower() for a in world.access.all()}


def test_h2_a_group_grant_is_not_removed_when_the_consumers_direct_grant_fails(world):
    _key, group = _only_group_grant(world, MYSQL)
    outcome = _reconcile(world, MYSQL, access=RefusingGrants(world.access))
    assert group.id.lower() in _ids(world)  # the group grant, maybe the consumer's only access, stays
    assert outcome.executed == () and any(s.startswith("GrantRole") for s in outcome.skipped)
    [deferred] = outcome.plan.deferred
    assert deferred.step.assignment_id == group.id and deferred.until is None
    assert world.access_checks.messages == []  # a failed grant waits for the sweep, not a tight re-queue loop


def test_h2_a_group_grant_goes_only_once_the_direct_grant_has_been_in_effect_for_the_propagation_time(world):
    _key, group = _only_group_grant(world, MYSQL)
    first = _reconcile(world, MYSQL)
    assert [type(s) for s in first.plan.changes] == [GrantRole] and group.id.lower() in _ids(world)
    assert first.status == "remediated" and first.deferred
    [queued] = world.access_checks.messages
    assert queued.delay_seconds == FOLLOW_UP_DELAY

    world.clock.advance(timedelta(seconds=60))
    alerted = len(world.alerts.published)
    early = _follow_up(world, MYSQL)
    assert len(world.alerts.published) == alerted  # waiting again is not a new violation: no alert every few seconds
    assert early.status == "deferred" and group.id.lower() in _ids(world)
    assert isinstance(early.plan.deferred[0], Deferred) and early.plan.deferred[0].until is not None
    assert len(world.access_checks.messages) == 2  # re-queued itself; waiting is not a failure
    assert early.skipped == ()

    world.clock.advance(RBAC_PROPAGATION)
    done = _follow_up(world, MYSQL)
    assert done.status == "remediated" and group.id.lower() not in _ids(world)
    assert done.executed == (f"RemoveAssignment {group.id}",)


def test_h3_crypto_officer_is_not_swapped_for_the_minimal_role_in_one_pass(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    officer = world.grant(key.scope, key.identity.principal_id, roles.CRYPTO_OFFICER)
    outcome = _reconcile(world, MYSQL)
    assert outcome.executed == (f"GrantRole {key.identity.principal_id}",)
    assert officer.id.lower() in _ids(world)  # listed in ARM is not in effect in Key Vault
    world.clock.advance(RBAC_PROPAGATION - timedelta(seconds=1))
    assert _reconcile(world, MYSQL).status == "deferred" and officer.id.lower() in _ids(world)
    world.clock.advance(timedelta(seconds=2))
    assert _reconcile(world, MYSQL).status == "remediated" and officer.id.lower() not in _ids(world)


def test_the_propagation_time_is_a_setting(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    officer = world.grant(key.scope, key.identity.principal_id, roles.CRYPTO_OFFICER)
    _reconcile(world, MYSQL, rbac_propagation=timedelta(seconds=30))
    world.clock.advance(timedelta(seconds=31))
    _reconcile(world, MYSQL, rbac_propagation=timedelta(seconds=30))
    assert officer.id.lower() not in _ids(world)


class RevokedWhilePlanning:
    """The ledger: empty when the reconcile reads it for its plan, a revocation landing right after (review M1)."""

    def __init__(self, inner, world, key, principal, *, reads_before: int):
        self.inner, self.world, self.key, self.principal = inner, world, key, principal
        self.reads, self.reads_before = 0, reads_before

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def revoked(self, key: str) -> set[str]:
        self.reads += 1
        if self.reads == self.reads_before + 1:
            self.inner.revoke(self.key, self.principal, at=self.world.clock.now())
        return self.inner.revoked(key)


def test_m1_a_revocation_that_lands_between_plan_and_grant_is_not_granted_back(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    ledger = RevokedWhilePlanning(world.revocations, world, MYSQL, key.identity.principal_id, reads_before=1)
    outcome = _reconcile(world, MYSQL, revocations=ledger)
    assert [type(s) for s in outcome.plan.changes] == [GrantRole]  # planned before the revocation
    assert world.access.list_assignments(key.scope) == []
    assert "revoked" in outcome.skipped[0]


def test_m1_a_grant_made_as_the_revocation_lands_is_deleted_at_once(world):
    key = world.key(MYSQL)
    for a in world.access.list_assignments(key.scope):
        world.access.delete_assignment(a.id)
    ledger = RevokedWhilePlanning(world.revocations, world, MYSQL, key.identity.principal_id, reads_before=2)
    outcome = _reconcile(world, MYSQL, revocations=ledger)
    assert world.access.list_assignments(key.scope) == []
    assert "deleted" in outcome.skipped[0]
    assert ("access-grant", "withdrawn") in [(r.action, r.outcome) for r in world.audit.all()]


def _move_mysql_to_second_identity(world):
    """The operator moved the server's encryption to a second UAMI and granted it the minimal role at the key."""
    key = world.key(MYSQL)
    [server] = key.consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    second = str(uuid.uuid4())
    grant = world.grant(key.scope, second, roles.CRYPTO_SERVICE_ENCRYPTION_USER)
    world.consumers.use_identity(server.kind.value, server.resource_id, second)
    return key, second, grant


def test_the_identity_a_consumer_really_uses_keeps_its_grant(world):
    _key, second, grant = _move_mysql_to_second_identity(world)
    outcome = _reconcile(world, MYSQL)
    assert grant.id.lower() in _ids(world)
    [report] = [s for s in outcome.plan.steps if isinstance(s, Report)]
    assert report.principal_id == second and "really uses" in report.reason
    assert not [s for s in outcome.plan.steps if isinstance(s, RemoveAssignment)]


def test_without_the_consumers_state_the_same_grant_is_an_extra_one(world):
    """The control: what the app did before it read the identity from ARM (the issue's lockout)."""
    _key, _second, grant = _move_mysql_to_second_identity(world)
    _reconcile(world, MYSQL, consumers=None)
    assert grant.id.lower() not in _ids(world)


def test_a_consumer_whose_identity_cannot_be_read_has_nothing_removed(world):
    stranger = str(uuid.uuid4())
    grant = world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_USER)

    class Unreadable:
        def get_state(self, kind, resource_id):
            from shared.errors import ServiceUnavailable

            raise ServiceUnavailable("ARM unavailable")

    outcome = _reconcile(world, MYSQL, consumers=Unreadable())
    assert grant.id.lower() in _ids(world)
    assert all(isinstance(s, Report) for s in outcome.plan.steps)


def test_a_group_grant_stays_while_the_identity_a_consumer_really_uses_has_no_direct_grant(world):
    key = world.key(MYSQL)
    [server] = key.consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    second = str(uuid.uuid4())
    world.consumers.use_identity(server.kind.value, server.resource_id, second)  # reaches the key through a group
    group = world.access.create_assignment(key.scope, world.role_id(roles.CRYPTO_USER), str(uuid.uuid4()), "Group")
    world.clock.advance(RBAC_PROPAGATION * 2)
    outcome = _reconcile(world, MYSQL)
    assert group.id.lower() in _ids(world)
    assert any(isinstance(s, Report) and second in s.reason for s in outcome.plan.steps)
    world.grant(key.scope, second)  # once it holds its own grant, the group's may go
    world.clock.advance(RBAC_PROPAGATION * 2)
    _reconcile(world, MYSQL)
    assert group.id.lower() not in _ids(world)
