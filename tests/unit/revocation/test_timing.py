"""Verification on Azure's time: a revocation (or restoration) takes effect up to the RBAC propagation time after it
was carried out, on the app's clock, and a MySQL server reports Inaccessible up to about ten minutes after that. A
follow-up that looks earlier re-queues without counting an attempt; after that time the three-checks rule applies."""

from __future__ import annotations

from datetime import timedelta

from functions.revocation import MAX_CHECKS, check_revocation, restore, revoke
from functions.revocation.check import CONSUMER_GRACE
from shared.http.commands import RestoreCommand, RevokeCommand
from shared.model import ConsumerKind
from shared.revocation import RevocationState
from tests.fakes.outbound import FakeWorkQueue

MYSQL = "mysql-encryption-key"
PROPAGATION = timedelta(seconds=600)
SETTLED = PROPAGATION + CONSUMER_GRACE[ConsumerKind.MYSQL_FLEXIBLE_SERVER] + timedelta(seconds=1)


def _ports(world, checks) -> dict:
    return world.revocation_ports(checks, follow_up_delay=3)


def _check(world, checks):
    ports = {k: v for k, v in _ports(world, checks).items() if k != "vault_settings"}
    return check_revocation(checks.drain()[-1], **ports, rbac_propagation=PROPAGATION)


def _server(world) -> str:
    return next(c.resource_id for c in world.key(MYSQL).consumers if c.resource_id)


def _revoked(world, checks):
    command = RevokeCommand(MYSQL, "revoke-access", "drill", "alice", service="mysql", dry_run=False)
    return revoke(command, **_ports(world, checks)).revocation


def test_a_check_before_azure_can_have_applied_the_revocation_waits_without_counting_an_attempt(world):
    checks = FakeWorkQueue()
    revocation = _revoked(world, checks)
    assert revocation.executed_at == world.clock.now()
    for _ in range(MAX_CHECKS + 2):  # the server still reports itself available: Azure has not applied it yet
        outcome = _check(world, checks)
        assert outcome.status == "rescheduled" and checks.messages[-1].delay_seconds == 3
        world.clock.advance(timedelta(minutes=3))
    current = world.revocations.get(revocation.revocation_id)
    assert current.state is RevocationState.EXECUTED and current.checks == 0
    world.clock.advance(SETTLED)  # past it: the three-checks rule
    outcomes = [_check(world, checks) for _ in range(MAX_CHECKS)]
    assert [o.status for o in outcomes] == ["rescheduled"] * (MAX_CHECKS - 1) + ["failed"]


def test_a_revocation_in_force_early_is_verified_at_once(world):
    checks = FakeWorkQueue()
    _revoked(world, checks)
    world.consumers.set_available("mysql-flexible-server", _server(world), False, "Inaccessible")
    assert _check(world, checks).status == "verified"


def test_a_restoration_is_given_the_same_time_before_its_check_counts(world):
    checks = FakeWorkQueue()
    revocation = _revoked(world, checks)
    world.consumers.set_available("mysql-flexible-server", _server(world), False, "Inaccessible")
    assert _check(world, checks).status == "verified"
    world.clock.advance(timedelta(hours=1))
    ports = {
        k: v for k, v in _ports(world, checks).items() if k not in ("roles", "vault_settings", "consumers", "dekstore")
    }
    restored = restore(RestoreCommand(revocation.revocation_id, "drill over", "bob"), **ports)
    assert restored.status == "restored" and restored.revocation.restoration.restored_at == world.clock.now()
    for _ in range(MAX_CHECKS + 1):  # the server still reports Inaccessible: not yet back
        assert _check(world, checks).status == "rescheduled"
    assert world.revocations.get(revocation.revocation_id).restoration.failure is None
    world.clock.advance(SETTLED)
    outcomes = [_check(world, checks)]
    while outcomes[-1].status == "rescheduled" and len(outcomes) < MAX_CHECKS:
        outcomes.append(_check(world, checks))
    assert outcomes[-1].status == "failed"  # past the time, the restoration's check counts again
