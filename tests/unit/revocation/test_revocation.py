"""Revocation and restoration over fakes: plans, the ledger first, verification, idempotency, and what they refuse."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from functions.access.reconcile import reconcile_key
from functions.api.answers import revocation_answer
from functions.revocation import (
    ACCESS_RESTORED_ALERT,
    ACCESS_REVOKED_ALERT,
    FAILED_ALERT,
    KEY_DISABLED_ALERT,
    MAX_CHECKS,
    VERIFIED_ALERT,
    check_revocation,
    get_revocation,
    restore,
    revoke,
)
from functions.revocation.check import CONSUMER_GRACE
from functions.rotation.rotate import RotationStatus, rotate_from
from shared import roles
from shared.envelope.deks import create_dek, open_dek
from shared.errors import CmkError, Conflict, KeyDisabled, MalformedMessage, UnknownReference, Unprocessable
from shared.http.commands import RestoreCommand, RevokeCommand
from shared.revocation import RevocationState
from tests.fakes.outbound import FakeWorkQueue

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
DELAY = 600
PROPAGATION = timedelta(seconds=600)


@pytest.fixture
def checks() -> FakeWorkQueue:
    return FakeWorkQueue()


def _ports(world, checks) -> dict:
    return world.revocation_ports(checks, follow_up_delay=DELAY)


def _revoke(world, checks, **fields):
    command = RevokeCommand(**{"key": MYSQL, "action": "revoke-access", "reason": "drill", "caller": "alice", **fields})
    return revoke(command, **_ports(world, checks))


def _restore(world, checks, revocation_id: str, reason: str = "drill over"):
    ports = {
        k: v for k, v in _ports(world, checks).items() if k not in ("roles", "vault_settings", "consumers", "dekstore")
    }
    return restore(RestoreCommand(revocation_id, reason, "bob"), **ports)


def _check(world, checks, message=None):
    """The follow-up once Azure had all its time (propagation and the consumers' grace): the rules after it, which
    tests/unit/revocation/test_timing.py tells apart from the waiting before it."""
    message = message or checks.drain()[-1]
    ports = {k: v for k, v in _ports(world, checks).items() if k != "vault_settings"}
    world.clock.advance(PROPAGATION + max(CONSUMER_GRACE.values()) + timedelta(seconds=1))
    return check_revocation(message, **ports, rbac_propagation=PROPAGATION)


def _key_use(world, name: str, principal: str) -> bool:
    key = world.key(name)
    return any(
        a.principal_id.lower() == principal
        and a.scope.lower() == key.scope.lower()
        and world.access.get_role_definition(a.role_definition_id).key_operations()
        for a in world.access.list_assignments(key.scope)
    )


def _mysql_server(world):
    return next(c.resource_id for c in world.key(MYSQL).consumers if c.resource_id)


def _state(world):
    """What a refused request must leave exactly as it was."""
    versions = {
        k.name: sorted((v.version, v.enabled) for v in world.vault.list_versions(k.ref)) for k in world.inventory.keys
    }
    assignments = sorted(a.id for k in world.inventory.keys for a in world.access.list_assignments(k.scope))
    return versions, assignments, [r.revocation_id for r in world.revocations.active()]


def test_without_dry_run_false_it_is_only_a_plan_that_names_who_loses_what(world, checks):
    mysql = world.key(MYSQL).identity.principal_id
    before = _state(world)
    outcome = _revoke(world, checks, service="mysql")
    assert outcome.status == "planned" and _state(world) == before
    plan = outcome.plan.to_json()
    assert plan["principal_id"] == mysql and len(plan["remove"]) == 1 and plan["blockers"] == []
    assert any("Inaccessible" in loss["becomes"] and loss["who"] == _mysql_server(world) for loss in plan["losses"])
    assert world.alerts.published == [] and checks.messages == []
    assert world.audit.all()[-1].action == "revocation-plan" and "alice" in world.audit.all()[-1].trigger
    answer = revocation_answer(outcome)
    assert answer.status == 200 and answer.body["dry_run"] is True


def test_revoking_the_mysql_identity_records_first_removes_at_key_scope_alerts_and_schedules_the_check(world, checks):
    mysql = world.key(MYSQL).identity.principal_id
    aks = world.key(AKS).identity.principal_id
    outcome = _revoke(world, checks, service="mysql", dry_run=False)
    assert outcome.status == "executed"
    revocation = outcome.revocation
    assert revocation.state is RevocationState.EXECUTED and revocation.executed
    assert world.revocations.revoked(MYSQL) == {mysql}
    assert not _key_use(world, MYSQL, mysql) and _key_use(world, AKS, aks)
    [alert] = world.alerts.published
    assert alert.type == ACCESS_REVOKED_ALERT and alert.data["requested_by"] == "alice"
    assert alert.data["reason"] == "drill" and alert.data["counts"]["remove"] == 1 and alert.data["audit_record_id"]
    [follow_up] = checks.messages
    assert follow_up.delay_seconds == DELAY and follow_up.message["revocation_id"] == revocation.revocation_id
    answer = revocation_answer(outcome)
    assert answer.status == 202 and answer.headers["Location"] == f"/api/revocations/{revocation.revocation_id}"
    assert get_revocation(revocation.revocation_id, revocations=world.revocations)["state"] == "executed"


def test_a_second_identical_revocation_answers_with_the_first_id_and_alerts_nothing(world, checks):
    first = _revoke(world, checks, service="mysql", dry_run=False)
    mysql = world.key(MYSQL).identity.principal_id
    again = _revoke(world, checks, principal_id=mysql, dry_run=False)
    assert again.status == "already-revoked"
    assert again.revocation.revocation_id == first.revocation.revocation_id
    assert len(world.alerts.published) == 1 and len(checks.messages) == 1
    assert revocation_answer(again).status == 200


def test_reconciliation_does_not_grant_a_revoked_consumer_back(world, checks):
    _revoke(world, checks, service="mysql", dry_run=False)
    ports = {**world.access_ports(), "access_checks": FakeWorkQueue()}
    outcome = reconcile_key(world.key(MYSQL), trigger="test", **ports)
    assert not any("GrantRole" in s for s in outcome.executed)
    assert not _key_use(world, MYSQL, world.key(MYSQL).identity.principal_id)


def test_the_follow_up_verifies_once_the_consumer_reports_its_loss(world, checks):
    _revoke(world, checks, service="mysql", dry_run=False)
    message = checks.drain()[0]
    first = _check(world, checks, message)  # the fake server still reports itself available: not yet in force
    assert first.status == "rescheduled" and checks.messages[0].delay_seconds == DELAY
    world.consumers.set_available("mysql-flexible-server", _mysql_server(world), False, "Inaccessible")
    second = _check(world, checks, checks.drain()[0])
    assert second.status == "verified"
    revocation = world.revocations.get(message["revocation_id"])
    assert revocation.state is RevocationState.VERIFIED and revocation.verified_at is not None
    assert world.alerts.published[-1].type == VERIFIED_ALERT
    assert _check(world, checks, message).status == "skipped"  # a duplicate delivery changes nothing
    assert world.alerts.published[-1].type == VERIFIED_ALERT and len(world.alerts.published) == 2


def test_a_consumer_still_working_after_every_check_fails_the_revocation_loudly(world, checks):
    _revoke(world, checks, service="mysql", dry_run=False)
    message = checks.drain()[0]
    outcomes = [_check(world, checks, message) for _ in range(MAX_CHECKS)]
    assert [o.status for o in outcomes] == ["rescheduled"] * (MAX_CHECKS - 1) + ["failed"]
    revocation = world.revocations.get(message["revocation_id"])
    assert revocation.state is RevocationState.FAILED and "still reports itself available" in revocation.failure
    assert world.alerts.published[-1].type == FAILED_ALERT


def test_a_grant_that_reappears_is_a_failed_revocation_at_the_follow_up(world, checks):
    outcome = _revoke(world, checks, service="mysql", dry_run=False)
    mysql = world.key(MYSQL).identity.principal_id
    world.grant(world.key(MYSQL).scope, mysql)
    result = _check(world, checks)
    assert result.status == "failed" and "holds key use again" in result.detail[0]
    assert world.revocations.get(outcome.revocation.revocation_id).state is RevocationState.FAILED


def test_restoring_gives_the_grant_back_closes_the_ledger_and_is_idempotent(world, checks):
    mysql = world.key(MYSQL).identity.principal_id
    revocation = _revoke(world, checks, service="mysql", dry_run=False).revocation
    checks.drain()
    restored = _restore(world, checks, revocation.revocation_id)
    assert restored.status == "restored" and revocation_answer(restored).status == 202
    assert _key_use(world, MYSQL, mysql) and world.revocations.revoked(MYSQL) == set()
    assert world.alerts.published[-1].type == ACCESS_RESTORED_ALERT
    assert (
        world.alerts.published[-1].data["restored"] == 1
        and world.alerts.published[-1].data["restoration_audit_record_id"]
    )
    again = _restore(world, checks, revocation.revocation_id)
    assert again.status == "already-restored" and len(world.alerts.published) == 2
    verified = _check(world, checks, checks.drain()[0])
    assert verified.status == "verified"
    assert world.revocations.get(revocation.revocation_id).restoration.verified_at is not None
    fresh = _revoke(world, checks, service="mysql", dry_run=False)  # the subject may be revoked anew
    assert fresh.status == "executed" and fresh.revocation.revocation_id != revocation.revocation_id


def test_disable_key_shreds_every_version_makes_its_deks_unreadable_and_leaves_the_other_key(world, checks):
    aks = world.key(AKS)
    world.vault.rotate_key(aks.ref)
    dek = create_dek(aks, vault=world.vault, store=world.dekstore)
    other = create_dek(world.key(MYSQL), vault=world.vault, store=world.dekstore)
    plan = _revoke(world, checks, key=AKS, action="disable-key").plan
    assert len(plan.disable) == 2 and plan.deks_unreadable == 1
    with pytest.raises(Unprocessable) as refused:
        _revoke(world, checks, key=AKS, action="disable-key", dry_run=False, confirm="mysql-encryption-key")
    assert refused.value.field == "confirm"
    outcome = _revoke(world, checks, key=AKS, action="disable-key", dry_run=False, confirm=AKS)
    assert outcome.status == "executed" and world.alerts.published[-1].type == KEY_DISABLED_ALERT
    assert all(not v.enabled for v in world.vault.list_versions(aks.ref))
    assert all(v.enabled for v in world.vault.list_versions(world.key(MYSQL).ref))
    with pytest.raises(KeyDisabled):
        open_dek(dek.record.partition, dek.record.dek_id, vault=world.vault, store=world.dekstore)
    open_dek(other.record.partition, other.record.dek_id, vault=world.vault, store=world.dekstore)
    assert world.revocations.shredded(AKS) == outcome.revocation.revocation_id
    restored = _restore(world, checks, outcome.revocation.revocation_id)
    assert restored.status == "restored" and all(v.enabled for v in world.vault.list_versions(aks.ref))
    open_dek(dek.record.partition, dek.record.dek_id, vault=world.vault, store=world.dekstore)


def test_rotation_never_renews_a_shredded_key(world, checks):
    aks = world.key(AKS)
    current = world.vault.get_key(aks.ref)
    _revoke(world, checks, key=AKS, action="disable-key", dry_run=False, confirm=AKS)
    outcome = rotate_from(aks, current.version, trigger="test", reason="due", **world.rotation_ports())
    assert outcome.status is RotationStatus.REFUSED
    assert len(world.vault.list_versions(aks.ref)) == 1


def test_an_inherited_grant_blocks_execution_and_nothing_changes(world, checks):
    mysql = world.key(MYSQL).identity.principal_id
    world.grant(world.inventory.vaults[0].resource_id, mysql, roles.CRYPTO_USER)
    before = _state(world)
    outcome = _revoke(world, checks, service="mysql", dry_run=False)
    assert outcome.status == "blocked" and "inherited" in outcome.plan.blockers[0]
    assert _state(world) == before and world.alerts.published == []
    assert revocation_answer(outcome).status == 409


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"key": "no-such-key"}, UnknownReference, "key"),
        ({"service": "postgres"}, Unprocessable, "service"),
        ({"principal_id": str(uuid.uuid4())}, Unprocessable, "principal_id"),
    ],
)
def test_what_does_not_exist_is_refused_naming_the_field(world, checks, fields, error, field):
    before = _state(world)
    fields = {"service": "mysql", **fields} if "principal_id" not in fields else fields
    with pytest.raises(error) as refused:
        _revoke(world, checks, dry_run=False, **fields)
    assert refused.value.field == field and _state(world) == before


def test_the_apps_own_identity_cannot_be_revoked(world, checks):
    outcome = _revoke(world, checks, principal_id=world.inventory.app_identity, dry_run=False)
    assert outcome.status == "blocked" and "own identity" in outcome.plan.blockers[0]


def test_restoring_what_was_never_revoked_is_404_naming_the_field(world, checks):
    with pytest.raises(UnknownReference) as refused:
        _restore(world, checks, uuid.uuid4().hex)
    assert refused.value.field == "revocation_id"


def test_a_failed_step_fails_the_revocation_and_an_identical_request_resumes_it(world, checks):
    calls = {"n": 0}
    real_delete = world.access.delete_assignment

    def flaky(assignment_id):
        calls["n"] += 1
        if calls["n"] == 1:
            raise CmkError("ARM answered 500")
        return real_delete(assignment_id)

    world.access.delete_assignment = flaky
    failed = _revoke(world, checks, service="mysql", dry_run=False)
    assert failed.status == "failed" and world.alerts.published[-1].type == FAILED_ALERT
    assert revocation_answer(failed).status == 502
    assert world.revocations.revoked(MYSQL)  # still revoked on purpose: reconciliation must not re-grant meanwhile
    resumed = _revoke(world, checks, service="mysql", dry_run=False)
    assert resumed.status == "resumed" and resumed.revocation.revocation_id == failed.revocation.revocation_id
    assert resumed.revocation.state is RevocationState.EXECUTED


@pytest.mark.parametrize(
    "message",
    [None, {}, {"version": 1, "phase": "x", "revocation_id": "0" * 32}, {"version": 1, "phase": "revocation"}],
)
def test_a_malformed_check_is_dropped(world, checks, message):
    with pytest.raises(MalformedMessage):
        _check(world, checks, message or {"version": 2})


def test_a_restoration_of_a_revocation_still_being_carried_out_is_a_conflict(world, checks):
    outcome = _revoke(world, checks, service="mysql", dry_run=False)
    stuck = world.revocations.update(outcome.revocation.moved(RevocationState.PLANNED, world.clock.now()))
    with pytest.raises(Conflict):
        _restore(world, checks, stuck.revocation_id)


def test_the_compliance_report_calls_a_revocation_in_force_sanctioned_not_drift(world, checks):
    from functions.compliance.report import report_keys

    _revoke(world, checks, service="mysql", dry_run=False)
    _revoke(world, checks, key=AKS, action="disable-key", dry_run=False, confirm=AKS)
    plain = {(f.key, f.code) for f in report_keys(**world.ports()).findings}
    assert {(MYSQL, "AccessMissing"), (AKS, "KeyDisabled")} <= plain
    report = report_keys(**world.ports(), revocations=world.revocations)
    codes = {(f.key, f.code): f.severity.value for f in report.findings}
    assert codes[(MYSQL, "AccessRevoked")] == "warning" and codes[(AKS, "KeyShredded")] == "warning"
    assert (MYSQL, "AccessMissing") not in codes and (AKS, "KeyDisabled") not in codes


def test_the_key_status_shows_the_revocations_in_force(world, checks):
    from functions.api.key_status import keys_status

    revocation = _revoke(world, checks, service="mysql", dry_run=False).revocation
    ports = {**world.ports(), "dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit}
    body = keys_status(**ports, revocations=world.revocations)
    by_name = {k["name"]: k for k in body["keys"]}
    assert by_name[MYSQL]["revocations"] == [
        {
            "id": revocation.revocation_id,
            "action": "revoke-access",
            "principal_id": revocation.principal_id,
            "state": "executed",
        }
    ]
    assert by_name[AKS]["revocations"] == []


def test_losing_the_race_to_execute_answers_already_revoked_on_the_record_without_a_second_alert(world, checks):
    from shared.errors import PreconditionFailed

    ledger = world.revocations
    real_update = ledger.update
    state = {"raced": False}

    def update_after_a_rival(revocation):
        if revocation.state is RevocationState.EXECUTED and not state["raced"]:
            state["raced"] = True
            real_update(revocation)  # the rival instance got there first
            raise PreconditionFailed("changed meanwhile")
        return real_update(revocation)

    ledger.update = update_after_a_rival
    outcome = _revoke(world, checks, service="mysql", dry_run=False)
    assert outcome.status == "already-revoked" and outcome.revocation.state is RevocationState.EXECUTED
    assert world.alerts.published == [] and checks.messages == []  # the rival alerts and schedules, not this call
    assert world.audit.all()[-1].outcome == "already-revoked"


def test_a_restoration_whose_removed_assignments_cannot_be_read_fails_loudly_and_restores_nothing(world, checks):
    """M2: a record whose plan lost `remove` (as the old ledger's truncation left it) must not report RESTORED."""
    import dataclasses

    app = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, app, roles.CRYPTO_USER)
    outcome = _revoke(world, checks, principal_id=app, dry_run=False)
    assert outcome.status == "executed" and not _key_use(world, MYSQL, app)
    current = world.revocations.get(outcome.revocation.revocation_id)
    world.revocations.update(dataclasses.replace(current, plan={"_truncated": True, "summary": "s"}))
    world.alerts.published.clear()
    restored = _restore(world, checks, outcome.revocation.revocation_id)
    assert restored.status == "failed" and restored.error is not None and "remove" in str(restored.error)
    assert world.revocations.get(outcome.revocation.revocation_id).state is not RevocationState.RESTORED
    assert [a.type for a in world.alerts.published] == [FAILED_ALERT]
