"""Targeted resume and the quarantine (review M5): a DEK that cannot move costs one alert, not a re-listing of every
shard and an alert every hour; it is skipped by the resume, shown on the status, and released by an operator or by
a successful move. Over the in-memory fakes; tests/e2e/test_rewrap_over_the_wire.py has the over-the-wire twin."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from functions.api.key_status import dependents
from functions.rewrap.fan_out import on_new_version
from functions.rewrap.worker import KCV_ALERT
from functions.sweep import run_sweep
from shared.envelope import count_by_version
from shared.events import KeyNewVersionCreated
from tests.unit.rewrap.test_rewrap import MYSQL, _drain, _rotate, _seed


def _stuck_dek(world, plaintexts) -> tuple[str, str]:
    """One DEK whose KCV no longer matches its wrapped bytes: no re-wrap can ever move it."""
    partition, dek_id = sorted(plaintexts)[3]
    read = world.dekstore.get(partition, dek_id)
    world.dekstore.replace(dataclasses.replace(read, kcv="0" * 16))
    return partition, dek_id


def _hourly_sweeps(world, hours: int) -> list[tuple[list[str], tuple[str, ...]]]:
    """Per hour: the shards the re-wrap listed while draining what the sweep sent, and the shards it resumed."""
    seen = []
    for _ in range(hours):
        world.clock.advance(timedelta(hours=1))
        world.dekstore.listed.clear()
        outcome = run_sweep(**world.sweep_ports())
        _drain(world)
        mysql = next(d for d in outcome.dependents if d.key == MYSQL)
        seen.append((list(world.dekstore.listed), mysql.resumed))
    return seen


def test_three_hourly_sweeps_list_no_shard_with_nothing_behind_and_alert_once(world):
    plaintexts = _seed(world, MYSQL, 60)
    stuck = _stuck_dek(world, plaintexts)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    assert [a.data["dek_id"] for a in world.alerts.published if a.type == KCV_ALERT] == [stuck[1]]
    assert [(q.partition, q.dek_id) for q in world.dekstore.quarantined(world.key(MYSQL).ref)] == [stuck]

    for listed, resumed in _hourly_sweeps(world, 3):
        assert listed == [] and resumed == ()  # the only DEK behind is quarantined: nothing to list
    assert len([a for a in world.alerts.published if a.type == KCV_ALERT]) == 1

    status = dependents(world.key(MYSQL), new.key_id, **_status_ports(world))
    assert status["quarantined"]["count"] == 1 and status["quarantined"]["deks"][0]["dek_id"] == stuck[1]
    assert status["quarantined"]["deks"][0]["reason"] == "KcvMismatch"
    assert sum(status["deks_by_version"].values()) == 60 and status["rewrap"]["remaining"] == 1


def test_a_shard_with_dek_behind_beside_a_quarantined_one_is_resumed_alone(world):
    plaintexts = _seed(world, MYSQL, 60)
    stuck = _stuck_dek(world, plaintexts)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    # A DEK written late under the old version (a writer that read the current version before the rotation).
    other = next(p for p, _ in plaintexts if p != stuck[0])
    original = world.dekstore.get(*next(k for k in plaintexts if k[0] == other))
    world.dekstore.add(dataclasses.replace(original, dek_id="late-one", key_id=original.previous_key_id,
                                           wrapped=original.previous_wrapped, previous_key_id=None,
                                           previous_wrapped=None, etag=None))  # fmt: skip
    [(listed, resumed)] = _hourly_sweeps(world, 1)
    assert resumed == (other,) and set(listed) == {other}  # not the stuck DEK's shard, not the 14 others
    assert len([a for a in world.alerts.published if a.type == KCV_ALERT]) == 1


def test_a_released_dek_is_tried_again_and_a_repaired_one_leaves_the_quarantine(world):
    plaintexts = _seed(world, MYSQL, 20)
    stuck = _stuck_dek(world, plaintexts)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    ref = world.key(MYSQL).ref
    # Released while still broken: the next sweep sends its shard, the page refuses it again, one more alert.
    assert world.dekstore.release(ref, *stuck)
    [(_, resumed)] = _hourly_sweeps(world, 1)
    assert resumed == (stuck[0],) and len([a for a in world.alerts.published if a.type == KCV_ALERT]) == 2
    # Repaired (its right KCV put back) and released: the next sweep moves it and the quarantine is empty.
    from shared.envelope import key_check_value

    read = world.dekstore.get(*stuck)
    world.dekstore.replace(dataclasses.replace(read, kcv=key_check_value(plaintexts[stuck])))
    world.dekstore.release(ref, *stuck)
    _hourly_sweeps(world, 1)
    assert world.dekstore.get(*stuck).key_id == new.key_id
    assert world.dekstore.quarantined(ref) == []
    assert sum(count_by_version(world.dekstore.shard_counts(ref)).values()) == 20


def test_a_quarantined_dek_that_moved_by_other_means_is_released_by_the_sweep(world):
    plaintexts = _seed(world, MYSQL, 10)
    stuck = _stuck_dek(world, plaintexts)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    read = world.dekstore.get(*stuck)
    world.dekstore.delete(read)  # the application deleted the record set and its DEK
    _hourly_sweeps(world, 1)
    assert world.dekstore.quarantined(world.key(MYSQL).ref) == []


def test_the_daily_reconciliation_reports_drift_once_a_day_as_a_finding(world):
    _seed(world, MYSQL, 10)
    partition = next(iter(world.dekstore.shard_counts(world.key(MYSQL).ref)))
    world.dekstore._counts[partition] = {}  # the counter lost its DEKs
    first = run_sweep(**world.sweep_ports())
    drift = [f for f in first.report.findings if f.code == "DekCountDrift"]
    assert [f.detail["partition"] for f in drift] == [partition] and drift[0].severity.value == "high"
    world.dekstore._counts[partition] = {}
    world.clock.advance(timedelta(hours=1))
    again = run_sweep(**world.sweep_ports())  # the same day: not reconciled again
    assert not [f for f in again.report.findings if f.code == "DekCountDrift"]
    world.clock.advance(timedelta(days=1))
    later = run_sweep(**world.sweep_ports())
    assert [f.detail["partition"] for f in later.report.findings if f.code == "DekCountDrift"] == [partition]


def _status_ports(world) -> dict:
    return {"dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit, "clock": world.clock}


def test_an_operator_release_is_audited_and_a_dek_not_quarantined_is_refused_naming_it(world):
    import json

    import pytest

    from functions.rewrap import release_quarantined
    from shared.errors import InvalidInput, UnknownReference
    from shared.http import parse_release_request

    plaintexts = _seed(world, MYSQL, 10)
    stuck = _stuck_dek(world, plaintexts)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    headers = {"Content-Type": "application/json"}
    body = {"key": MYSQL, "partition": stuck[0], "dek_id": stuck[1], "reason": "restored from backup"}
    command = parse_release_request(json.dumps(body).encode(), headers, "alice")
    ports = {"inventory": world.inventory, "dekstore": world.dekstore, "audit": world.audit, "clock": world.clock}
    answer = release_quarantined(command, **ports)
    assert answer["released"] and world.dekstore.quarantined(world.key(MYSQL).ref) == []
    [record] = [r for r in world.audit.all() if r.action == "quarantine-release"]
    assert record.trigger == "operator:alice" and record.detail["dek_id"] == stuck[1]
    with pytest.raises(UnknownReference) as again:
        release_quarantined(command, **ports)
    assert again.value.field == "dek_id"
    with pytest.raises(InvalidInput) as missing:
        parse_release_request(json.dumps({**body, "dek_id": None}).encode(), headers, "alice")
    assert missing.value.field == "dek_id"


def test_a_lagging_consumer_is_followed_up_alone_without_fanning_out_the_dek_table(world):
    """M5's other half: every DEK moved, but the MySQL server is still on the old version (its move was lost). The
    sweep queues that one move and no re-wrap page: nothing in the registry is behind."""
    _seed(world, MYSQL, 30)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    world.move_queue.messages = []  # the consumer's move was lost
    world.dekstore.listed.clear()
    outcome = run_sweep(**world.sweep_ports())
    mysql = next(d for d in outcome.dependents if d.key == MYSQL)
    assert mysql.resumed == () and len(mysql.moved) == 1
    assert world.rewrap_queue.drain() == [] and world.dekstore.listed == []
    assert [m["resource_id"] for m in world.move_queue.visible()] == list(mysql.moved)


def test_a_stalled_rewrap_of_an_announced_version_is_resumed_in_its_shards_behind_only(world):
    """The event fanned out, but the pages of three shards were lost: the sweep sends those three again, no other."""
    plaintexts = _seed(world, MYSQL, 60)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    sent = world.rewrap_queue.drain()
    lost = sorted({p for p, _ in plaintexts})[:3]
    for message in sent:
        if message["partition"] not in lost:
            world.rewrap_queue.send(message)
    _drain(world)
    [(listed, resumed)] = _hourly_sweeps(world, 1)
    assert resumed == tuple(lost) and sorted(set(listed)) == lost
    assert all(world.dekstore.get(*k).key_id == new.key_id for k in plaintexts)
