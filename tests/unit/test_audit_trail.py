"""The audit trail worth reading (issue 19), over fakes: one rotation of a key with no DEK writes at most three
records (the rotation, the re-wrap with nothing to move, the consumer's move), a move and a revocation are one record
each, principals are named with their role, and the app's own ARM writes echoed back are recognised as its own."""

from __future__ import annotations

from datetime import timedelta

from functions.consumers import move_consumer
from functions.dispatch import dispatch
from functions.revocation import revoke
from functions.rewrap import on_new_version
from functions.rotation import rotate_now
from shared.audit import principal_label
from shared.events import KeyNewVersionCreated, Rejection, RejectReason, parse_event
from shared.http.commands import RevokeCommand, RotateCommand
from tests.unit import event_samples as samples

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


def _drain_moves(world) -> None:
    for _ in range(100):
        queued, world.move_queue.messages = world.move_queue.messages, []
        if not queued:
            return
        for item in queued:
            world.clock.advance(timedelta(seconds=item.delay_seconds))
            move_consumer(item.message, **world.move_ports())


def test_one_rotation_of_a_key_with_no_deks_writes_at_most_three_records(world):
    world.clock.advance(timedelta(seconds=1))
    rotated = rotate_now(RotateCommand(AKS, "quarterly", "alice"), inventory=world.inventory, **world.rotation_ports())
    on_new_version(world.key_event(KeyNewVersionCreated, AKS, rotated.to_version), **world.rewrap_ports())
    assert world.rewrap_queue.visible() == []  # nothing behind: no page is enqueued, logged or audited
    _drain_moves(world)
    records = [(r.action, r.outcome) for r in world.audit.all()]
    assert sorted(records) == [("move-consumer", "moved"), ("rewrap", "completed"), ("rotate", "rotated")]
    rewrap = next(r for r in world.audit.all() if r.action == "rewrap")
    assert rewrap.detail["deks"] == 0 and rewrap.to_version == rotated.to_version
    # The same event again (Event Grid delivers at least once) writes nothing more.
    on_new_version(world.key_event(KeyNewVersionCreated, AKS, rotated.to_version), **world.rewrap_ports())
    _drain_moves(world)
    assert len(world.audit.all()) == 3


def test_a_revocation_is_one_record_naming_the_principal_with_its_role(world):
    revoke(
        RevokeCommand(MYSQL, "revoke-access", "leaver", "alice", service="mysql", dry_run=False),
        **world.revocation_ports(world.access_checks, follow_up_delay=3),
    )
    records = [r for r in world.audit.all() if r.action == "revocation"]
    assert [r.outcome for r in records] == ["executed"]
    principal = world.key(MYSQL).identity.principal_id
    assert records[0].detail["principal_name"] == f"mysql ({principal[:8]}…)"
    revocation = world.revocations.get(records[0].detail["id"])
    assert revocation.audit_record_id == records[0].record_id  # the ledger points at the one record
    assert f"of mysql ({principal[:8]}…) at {MYSQL}" in records[0].detail["plan"]  # the plan's summary names it too


def test_principals_are_named_with_their_role_in_the_inventory(world):
    inventory = world.inventory
    app, glass = inventory.app_identity, inventory.break_glass[0].principal_id
    aks = world.key(AKS).identity.principal_id
    assert principal_label(inventory, app) == f"this app ({app[:8]}…)"
    assert principal_label(inventory, glass.upper()) == f"break-glass ({glass[:8]}…)"
    assert principal_label(inventory, aks) == f"aks ({aks[:8]}…)"
    assert principal_label(inventory, aks, whole=True) == f"aks ({aks})"
    stranger = "0465df89-0000-4000-8000-000000000000"
    assert principal_label(inventory, stranger) == stranger
    assert principal_label(inventory, None) == "unknown"


def _des_write(caller_oid: str | None) -> dict:
    des = f"/subscriptions/{samples.SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/diskEncryptionSets/d"
    event = samples.arm_event(resource_uri=des, operation_name="Microsoft.Compute/diskEncryptionSets/write")
    if caller_oid is not None:
        event["data"]["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] = caller_oid
    return event


def test_the_apps_own_consumer_move_echoed_back_is_recognised_and_ignored(world):
    item = parse_event(_des_write(world.inventory.app_identity), world.inventory)
    assert isinstance(item, Rejection) and item.reason is RejectReason.OWN_CHANGE
    outcome = dispatch(item, {}, call=lambda *a: None)
    assert outcome.status == "ignored" and outcome.summary.startswith("own_change ")
    assert "diskEncryptionSets/write" in outcome.summary


def test_someone_elses_write_is_still_not_ours_and_says_rejected_once(world):
    """Evidence's principal (the sample's operator) is not the app: rejected as before, the word not doubled."""
    item = parse_event(_des_write("99999999-9999-4999-8999-999999999999"), world.inventory)
    assert isinstance(item, Rejection) and item.reason is RejectReason.NOT_OURS
    outcome = dispatch(item, {}, call=lambda *a: None)
    assert outcome.status == "rejected" and not outcome.summary.startswith("rejected")


def test_the_caller_is_also_found_in_the_evidence_as_arm_writes_it_without_dashes(world):
    event = _des_write(None)
    event["data"]["authorization"]["evidence"]["principalId"] = world.inventory.app_identity.replace("-", "")
    item = parse_event(event, world.inventory)
    assert isinstance(item, Rejection) and item.reason is RejectReason.OWN_CHANGE


def test_the_sweep_says_what_it_did_one_line_per_decision_and_nothing_when_quiet(world):
    from functions.sweep import run_sweep
    from tests.unit.fake_ports import FakePorts

    ports = FakePorts(world)
    assert ports.call(run_sweep).actions() == []
    world.clock.advance(timedelta(days=91))
    did = ports.call(run_sweep).actions()
    assert f"rotation {AKS}: rotated" in " | ".join(did) and any(line.startswith(f"rotation {MYSQL}") for line in did)
