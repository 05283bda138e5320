"""Consumer moves as the long-running operations they are (review H6): the new-version event only enqueues, the
`cmk-move` worker starts one PATCH under a claim and follows it through delayed messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.consumers.move_messages import parse_move_message
from functions.consumers.moves import (
    CONSUMER_ALERT,
    GIVE_UP_AFTER,
    alert_poisoned_move,
    move_claim_id,
    move_consumer,
)
from functions.rewrap.fan_out import on_new_version
from functions.sweep_dependents import tend_dependents
from shared.coordination.claims import ClaimStatus
from shared.errors import MalformedMessage
from shared.events import KeyNewVersionCreated

MYSQL = "mysql-encryption-key"
LRO = timedelta(minutes=10)  # a MySQL key change: minutes, far beyond Event Grid's 30 s


def _server(world):
    return next(c for c in world.key(MYSQL).consumers if c.kind.value == "mysql-flexible-server")


def _rotate(world):
    world.clock.advance(timedelta(seconds=1))
    return world.vault.rotate_key(world.key(MYSQL).ref)


def _event(world, version: str):
    return on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, version), **world.rewrap_ports())


def _sweep(world):
    """The sweep's dependents step: what retries a move once the version's announcement is done."""
    return tend_dependents(
        inventory=world.inventory, vault=world.vault, dekstore=world.dekstore, rewrap_queue=world.rewrap_queue,
        move_queue=world.move_queue, consumers=world.consumers, claims=world.claims, audit=world.audit,
        alerts=world.alerts, clock=world.clock,
    )  # fmt: skip


def _step(world) -> list:
    """One pass of the worker over what is queued now; the clock moves by each follow-up's delay first."""
    queued, world.move_queue.messages = world.move_queue.messages, []
    results = []
    for item in queued:
        world.clock.advance(timedelta(seconds=item.delay_seconds))
        results.append(move_consumer(item.message, **world.move_ports()))
    return results


def _drain(world, limit: int = 2000) -> list:
    results = []
    for _ in range(limit):
        if not world.move_queue.messages:
            return results
        results += _step(world)
    raise AssertionError("the moves did not converge")


def _key_url(world):
    server = _server(world)
    return world.consumers.get_state(server.kind.value, server.resource_id).key_url


def test_the_event_handler_only_enqueues_and_never_touches_arm(world):
    world.consumers.lro_duration = LRO
    new = _rotate(world)
    outcome = _event(world, new.version)
    assert world.consumers.moves == []  # no PATCH, no GET: the handler has no Consumers port at all
    [message] = world.move_queue.visible()
    assert parse_move_message(message).resource_id == _server(world).resource_id
    assert [s.action for s in outcome.steps if s.kind == "mysql-flexible-server"] == ["enqueued"]


def test_a_move_is_started_followed_while_in_progress_and_completed_when_done(world):
    world.consumers.lro_duration = LRO
    new = _rotate(world)
    _event(world, new.version)
    [started] = _step(world)
    assert started.action == "started" and started.target == new.key_id
    [follow_up] = world.move_queue.messages
    assert follow_up.delay_seconds == 3 and follow_up.message["operation_url"]  # a delayed follow-up, not a wait
    results = _drain(world)
    actions = [r.action for r in results]
    assert actions[-1] == "moved" and set(actions[:-1]) == {"in-progress"} and len(actions) > 100
    assert _key_url(world) == new.key_id
    assert world.consumers.moves == [(_server(world).resource_id, new.key_id)]
    claim = world.claims.get(move_claim_id(_server(world).resource_id, new.version))
    assert claim is not None and claim.status is ClaimStatus.COMPLETED
    outcomes = [r.outcome for r in world.audit.all() if r.action == "move-consumer"]
    assert outcomes == ["moved"]  # one action, one record: its start and follow-ups are log lines
    assert world.alerts.published == []


def test_duplicate_events_and_the_sweep_converge_on_exactly_one_patch(world):
    world.consumers.lro_duration = LRO
    new = _rotate(world)
    _event(world, new.version)
    _step(world)  # the first delivery's move is started
    assert _event(world, new.version).already  # Event Grid redelivers: the version is announced, nothing enqueued
    _sweep(world)  # the sweep sees the server behind (its move is running) and decides to move it again, twice
    _sweep(world)
    results = _drain(world)
    assert [r.action for r in results].count("in-flight") == 2
    assert world.consumers.moves == [(_server(world).resource_id, new.key_id)]  # exactly one PATCH
    assert world.consumers.refused == []
    assert _event(world, new.version).already  # a late duplicate, after the move: nothing more
    assert _drain(world) == []
    assert len(world.consumers.moves) == 1 and world.alerts.published == []


def test_a_409_while_another_operation_is_in_flight_is_in_progress_not_a_failure(world):
    world.consumers.lro_duration = LRO
    server = _server(world)
    new = _rotate(world)
    world.consumers.start_move(server.kind.value, server.resource_id, new.key_id)  # somebody else's PATCH
    _event(world, new.version)
    [busy] = _step(world)
    assert busy.action == "in-progress" and busy.detail["busy"] == "OperationInProgress"
    assert world.alerts.published == [] and len(world.consumers.refused) == 1
    assert world.move_queue.messages[0].message["phase"] == "follow"
    results = _drain(world)
    assert results[-1].action == "moved" and _key_url(world) == new.key_id
    assert world.alerts.published == []
    assert not [r for r in world.audit.all() if r.action == "move-consumer" and r.outcome == "failed"]


def test_a_409_from_an_operation_to_another_version_is_waited_out_then_the_patch_is_sent(world):
    world.consumers.lro_duration = LRO
    server = _server(world)
    before = _key_url(world)
    new = _rotate(world)
    world.consumers.start_move(server.kind.value, server.resource_id, before)  # an unrelated change of the server
    _event(world, new.version)
    results = _drain(world)
    assert results[-1].action == "moved" and _key_url(world) == new.key_id
    assert world.consumers.moves[-1] == (server.resource_id, new.key_id)
    assert world.alerts.published == []


def test_a_superseded_target_moves_to_the_current_version_never_backwards(world):
    world.consumers.lro_duration = LRO
    server = _server(world)
    v2 = _rotate(world)
    _event(world, v2.version)
    v3 = _rotate(world)  # the key moves on before the worker runs
    [started] = _step(world)
    assert started.target == v3.key_id
    _drain(world)
    assert _key_url(world) == v3.key_id
    _event(world, v2.version)  # a late event for v2: nothing moves back
    assert [r.action for r in _drain(world)] == ["already-there"]
    assert world.consumers.moves == [(server.resource_id, v3.key_id)]


def test_a_version_that_appears_while_a_patch_runs_gets_its_own_move_afterwards(world):
    world.consumers.lro_duration = LRO
    v2 = _rotate(world)
    _event(world, v2.version)
    _step(world)  # PATCH to v2 in flight
    v3 = _rotate(world)
    _event(world, v3.version)  # another version, another claim: its PATCH is refused (409) until v2's is done
    results = _drain(world)
    assert _key_url(world) == v3.key_id
    assert [url for _, url in world.consumers.moves] == [v2.key_id, v3.key_id]  # in order, never backwards
    assert world.alerts.published == [] and "moved" in [r.action for r in results]


def test_a_failed_operation_alerts_once_and_releases_the_claim_for_a_later_retry(world):
    world.consumers.lro_duration = LRO
    server = _server(world)
    before = _key_url(world)
    new = _rotate(world)
    world.consumers.fail_next_move("KeyVaultAccessForbidden: the identity cannot use the key")
    _event(world, new.version)
    _event(world, new.version)  # a duplicate decision while it runs
    results = _drain(world)
    assert [r.action for r in results].count("failed") == 1
    [alert] = world.alerts.published
    assert alert.type == CONSUMER_ALERT and alert.severity.value == "high"
    assert "KeyVaultAccessForbidden" in alert.data["reason"]
    failed = next(r for r in world.audit.all() if r.action == "move-consumer" and r.outcome == "failed")
    assert alert.data["audit_id"] == failed.record_id  # the alert points at its record
    assert _key_url(world) == before
    assert world.claims.get(move_claim_id(server.resource_id, new.version)) is None  # released
    assert [r.outcome for r in world.audit.all() if r.action == "move-consumer"] == ["failed"]  # one action, one record
    _sweep(world)  # the sweep tries again (a later event is a no-op: the version is announced), and this time it works
    assert _drain(world)[-1].action == "moved" and _key_url(world) == new.key_id
    assert len(world.alerts.published) == 1


def test_a_move_still_in_progress_after_two_hours_on_the_apps_clock_is_given_up_and_alerted(world):
    world.consumers.lro_duration = GIVE_UP_AFTER + timedelta(hours=1)
    server = _server(world)
    new = _rotate(world)
    _event(world, new.version)
    _step(world)
    [item] = world.move_queue.messages
    world.clock.advance(GIVE_UP_AFTER)  # the app's clock jumps (the emulated clock can); attempts are not counted
    results = _drain(world)
    assert [r.action for r in results] == ["gave-up"]
    [alert] = world.alerts.published
    assert alert.type == CONSUMER_ALERT and item.message["resource_id"] == server.resource_id
    assert world.claims.get(move_claim_id(server.resource_id, new.version)) is None


def test_a_follow_up_that_lost_its_claim_does_nothing(world):
    world.consumers.lro_duration = LRO
    new = _rotate(world)
    _event(world, new.version)
    _step(world)
    [item] = world.move_queue.drain()
    claim = world.claims.get(move_claim_id(_server(world).resource_id, new.version))
    world.claims.release(claim)
    result = move_consumer(item, **world.move_ports())
    assert result.action == "superseded" and world.move_queue.messages == []  # not followed again
    assert world.alerts.published == []


def test_a_consumer_that_follows_the_latest_version_is_left_to_azure(world):
    aks = next(k for k in world.inventory.keys if k.name != MYSQL)
    des = next((c for c in aks.consumers if c.kind.value == "disk-encryption-set"), None)
    if des is None:
        pytest.skip("the reference inventory has no disk encryption set")
    world.consumers.add(des.kind.value, des.resource_id, world.vault.get_key(aks.ref).key_id, follows_latest=True)
    world.clock.advance(timedelta(seconds=1))
    new = world.vault.rotate_key(aks.ref)
    on_new_version(world.key_event(KeyNewVersionCreated, aks.name, new.version), **world.rewrap_ports())
    results = [r for r in _drain(world) if r.resource_id == des.resource_id]
    assert [r.action for r in results] == ["following"] and world.consumers.moves == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 2}, "version"),
        ({"key": ""}, "key"),
        ({"resource_id": None}, "resource_id"),
        ({"phase": "later"}, "phase"),
        ({"phase": "follow", "target": "https://kv/keys/x"}, "target"),
        ({"key": "not-in-the-inventory"}, "key"),
    ],
)
def test_a_malformed_move_message_is_refused_naming_the_field(world, change, field):
    new = _rotate(world)
    _event(world, new.version)
    [message] = world.move_queue.drain()
    with pytest.raises(MalformedMessage) as refused:
        move_consumer({**message, **change}, **world.move_ports())
    assert refused.value.field == field


def test_a_poisoned_move_alerts_with_the_consumer_and_nothing_else(world):
    new = _rotate(world)
    _event(world, new.version)
    [message] = world.move_queue.drain()
    alert = alert_poisoned_move(message, alerts=world.alerts)
    assert (alert.type, alert.severity.value, alert.subject) == (CONSUMER_ALERT, "high", _server(world).resource_id)
    assert world.alerts.published == [alert]
    odd = alert_poisoned_move({"version": 9}, alerts=world.alerts)
    assert odd.data == {"malformed": "version"}


def test_a_move_that_waited_on_another_operation_sends_its_patch_once_free_even_after_the_clock_jumped(world):
    """Found by the soak (seed 2, two NotMoved alerts for moves that then had nothing in their way): a follow-up
    that waited out another operation's 409 gave up on its age before trying the PATCH, when the emulated clock had
    jumped past two hours while the other operation finished. Only an operation still running past the deadline is
    given up on."""
    world.consumers.lro_duration = LRO
    server = _server(world)
    before = _key_url(world)
    new = _rotate(world)
    world.consumers.start_move(server.kind.value, server.resource_id, before)  # an unrelated change of the server
    _event(world, new.version)
    [busy] = _step(world)
    assert busy.action == "in-progress"  # the 409: waits for the resource, no operation of its own yet
    world.clock.advance(GIVE_UP_AFTER + timedelta(days=2))  # the other operation is long done
    results = _drain(world)
    assert results[-1].action == "moved" and _key_url(world) == new.key_id
    assert world.alerts.published == []
