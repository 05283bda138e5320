"""Re-wrap over fakes: the new-version fan-out, the page worker, tampering, partial failure, races, crashes, the
retirement guard and the sweep's resumption. Every DEK must end on the new version and open to its original bytes."""

from __future__ import annotations

import os
import random
import threading
from datetime import timedelta

import pytest

from functions.consumers.moves import move_consumer
from functions.rewrap.fan_out import on_new_version
from functions.rewrap.messages import RewrapMessage
from functions.rewrap.worker import COMPLETED_ALERT, KCV_ALERT, WholePageFailed, rewrap_page
from functions.rotation.retirement import retire_unused_versions
from functions.sweep import run_sweep
from shared.coordination.budget import BudgetGrant
from shared.envelope.deks import key_check_value
from shared.envelope.sharding import all_shards, shard_of
from shared.errors import MalformedMessage, Throttled
from shared.events import KeyNewVersionCreated
from shared.model import WrappedDek

MYSQL, AKS = "mysql-encryption-key", "aks-encryption-key"


class UnlimitedBudget:
    def __init__(self) -> None:
        self.reserved = 0

    def reserve(self, scope, want, *, now, limit_per_window, window):
        self.reserved += want
        return BudgetGrant(want)


class ExhaustibleBudget:
    """`capacity` operations, then nothing (retry after 3.2 s) whatever the clock says: a budget other workers spend."""

    def __init__(self, capacity: int) -> None:
        self.left = capacity

    def reserve(self, scope, want, *, now, limit_per_window, window):
        granted = min(want, self.left)
        self.left -= granted
        return BudgetGrant(granted, 0.0 if granted else 3.2)


class WindowBudget:
    """`per_window` operations per 10 s of the (fake) clock, like the shared budget's arithmetic."""

    def __init__(self, per_window: int) -> None:
        self.per_window, self.used, self.calls = per_window, {}, []

    def reserve(self, scope, want, *, now, limit_per_window, window):
        index = int(now.timestamp() // 10)
        granted = min(want, self.per_window - self.used.get(index, 0))
        self.used[index] = self.used.get(index, 0) + granted
        self.calls.append((index, granted))
        return BudgetGrant(granted, 0.0 if granted else 10 - now.timestamp() % 10)


def _seed(world, name: str, count: int, partition: str | None = None) -> dict[tuple[str, str], bytes]:
    """DEKs under the key's current version, in their shards (or all in one); returns their plaintexts (the test's
    record)."""
    managed = world.key(name)
    prefix = next(c for c in managed.consumers if c.kind.value == "dek-table").options["partition_prefix"]
    current = world.vault.get_key(managed.ref)
    plaintexts = {}
    for i in range(count):
        dek = os.urandom(32)
        dek_id = f"dek-{i:05d}"
        shard = partition or shard_of(dek_id, prefix)
        wrapped = world.vault.wrap_key(managed.ref, current.version, dek)
        world.dekstore.add(
            WrappedDek(shard, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(dek))
        )
        plaintexts[(shard, dek_id)] = dek
    return plaintexts


def _rotate(world, name: str):
    world.clock.advance(timedelta(seconds=1))
    return world.vault.rotate_key(world.key(name).ref)


def _worker_ports(world, budget=None) -> dict:
    ports = {**world.rewrap_ports(), "inventory": world.inventory, "claims": world.claims, "dekstore": world.dekstore}
    ports.pop("move_queue")
    ports["alerts"] = world.alerts

    def sleep(seconds: float) -> None:  # waiting for the next budget window moves the fake clock, nothing else
        world.clock.advance(timedelta(seconds=seconds))

    return {**ports, "budget": budget or UnlimitedBudget(), "sleep": sleep}


def _drain(world, budget=None, vault=None) -> list:
    """Run the worker until the queue is empty, as the host would (delayed messages included: time is not modelled)."""
    outcomes = []
    ports = _worker_ports(world, budget)
    if vault is not None:
        ports["vault"] = vault
    for _ in range(1000):
        messages = world.rewrap_queue.drain()
        if not messages:
            return outcomes
        for message in messages:
            try:
                outcomes.append(rewrap_page(message, **ports))
            except WholePageFailed:
                world.rewrap_queue.send(message)  # the host delivers it again
    raise AssertionError("the re-wrap did not converge")


def _drain_moves(world) -> list:
    """Run the consumer-move worker until its queue is empty, each delayed follow-up after its delay on the clock."""
    results = []
    for _ in range(1000):
        queued = world.move_queue.messages
        if not queued:
            return results
        world.move_queue.messages = []
        for item in queued:
            world.clock.advance(timedelta(seconds=item.delay_seconds))
            results.append(move_consumer(item.message, **world.move_ports()))
    raise AssertionError("the moves did not converge")


def _assert_all_open_on(world, plaintexts, key_id: str) -> None:
    for (partition, dek_id), original in plaintexts.items():
        dek = world.dekstore.get(partition, dek_id)
        assert dek.key_id == key_id, (partition, dek_id)
        assert world.vault.unwrap_key(dek.key_id, dek.wrapped, dek.algorithm) == original


def test_a_new_version_fans_out_one_message_per_shard_and_queues_the_azure_consumers_moves(world):
    _seed(world, MYSQL, 9)
    new = _rotate(world, MYSQL)
    outcome = on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    messages = world.rewrap_queue.visible()
    assert sorted(m["partition"] for m in messages) == all_shards("mysql-")  # every shard, known without a scan
    assert {m["target"] for m in messages} == {new.key_id}
    mysql = world.key(MYSQL).consumers[0]
    assert world.consumers.moves == []  # the event handler never talks to ARM (review H6)
    assert [m["resource_id"] for m in world.move_queue.visible()] == [mysql.resource_id]
    assert {s.action for s in outcome.steps} == {"enqueued"}
    _drain_moves(world)
    assert world.consumers.get_state(mysql.kind.value, mysql.resource_id).key_url == new.key_id


def test_the_worker_moves_every_dek_keeps_the_previous_copy_and_alerts_completion_once(world):
    plaintexts = _seed(world, MYSQL, 250)  # pages of 100: continuations
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    # Delivered twice before any page ran: the version is announced once, the start recorded once.
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    outcomes = _drain(world)
    _assert_all_open_on(world, plaintexts, new.key_id)
    some = world.dekstore.get(shard_of("dek-00000", "mysql-"), "dek-00000")
    assert some.previous_key_id == old.key_id and some.previous_wrapped
    assert sum(o.succeeded for o in outcomes) == 250
    completed = [a for a in world.alerts.published if a.type == COMPLETED_ALERT]
    assert len(completed) == 1 and completed[0].data["deks"] == 250
    # A duplicate delivery of the event later finds the version announced: it enqueues nothing, alerts nothing more.
    moves_before = len(world.move_queue.visible())
    duplicate = on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    assert duplicate.already == "already moved" and duplicate.steps == ()
    assert not world.rewrap_queue.visible() and len(world.move_queue.visible()) == moves_before
    again = _drain(world)
    assert sum(o.succeeded for o in again) == 0
    assert len([a for a in world.alerts.published if a.type == COMPLETED_ALERT]) == 1
    # Its trail: one record when it started (250 behind), one when it completed; no record per page.
    rewraps = [(r.outcome, r.detail["deks"]) for r in world.audit.all() if r.action == "rewrap"]
    assert sorted(rewraps) == [("completed", 250), ("started", 250)]
    assert {r.action for r in world.audit.all()} == {"rewrap"}


def test_a_stale_page_for_a_superseded_version_moves_nothing_back(world):
    """Found by the soak (bench/soak.py, seed 1, day 678): a page message leased to a host killed mid-re-wrap came back
    ten minutes later, after six more rotations, and moved DEKs from the current version back to the old target, which
    had long been retired (disabled): those DEKs could no longer be opened. A page whose target is no longer the key's
    current version must leave every DEK where it is."""
    plaintexts = _seed(world, MYSQL, 30)
    old = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, old.version), **world.rewrap_ports())
    stale = world.rewrap_queue.drain()  # the dead host's leased messages, for a version about to be superseded
    current = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, current.version), **world.rewrap_ports())
    _drain(world)
    _assert_all_open_on(world, plaintexts, current.key_id)
    ports = _worker_ports(world)
    outcomes = [rewrap_page(message, **ports) for message in stale]  # the leases run out: delivered again
    assert sum(o.succeeded for o in outcomes) == 0 and all(o.superseded for o in outcomes)
    _assert_all_open_on(world, plaintexts, current.key_id)
    assert not world.rewrap_queue.visible()  # no continuation or retry of the stale chain either
    assert not [a for a in world.alerts.published if a.type == COMPLETED_ALERT and a.data["target"] == old.key_id]


def test_a_wrong_kcv_or_a_flipped_byte_never_replaces_the_good_copy(world):
    import dataclasses

    plaintexts = _seed(world, MYSQL, 10, partition="mysql-000")
    bad_kcv = world.dekstore.get("mysql-000", "dek-00003")
    world.dekstore.replace(dataclasses.replace(bad_kcv, kcv="0" * 32))
    flipped = world.dekstore.get("mysql-000", "dek-00007")
    corrupt = bytearray(flipped.wrapped)
    corrupt[17] ^= 0x01
    world.dekstore.replace(dataclasses.replace(flipped, wrapped=bytes(corrupt)))
    before = {i: world.dekstore.get("mysql-000", i) for i in ("dek-00003", "dek-00007")}
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    outcome = next(o for o in _drain(world) if o.partition == "mysql-000")
    assert set(outcome.refused) == {"dek-00003", "dek-00007"} and outcome.succeeded == 8
    for dek_id, entity in before.items():
        after = world.dekstore.get("mysql-000", dek_id)
        assert (after.key_id, after.wrapped, after.kcv) == (entity.key_id, entity.wrapped, entity.kcv)
    assert {a.data["dek_id"] for a in world.alerts.published if a.type == KCV_ALERT} == {"dek-00003", "dek-00007"}
    assert not [a for a in world.alerts.published if a.type == COMPLETED_ALERT]
    del plaintexts[("mysql-000", "dek-00003")], plaintexts[("mysql-000", "dek-00007")]
    _assert_all_open_on(world, plaintexts, new.key_id)


class ThrottlingVault:
    """Throttles a share of unwraps, as a vault at its limit does."""

    def __init__(self, vault, rate: float, seed: int = 7) -> None:
        self._vault, self._rate, self._random = vault, rate, random.Random(seed)
        self.throttled = 0

    def __getattr__(self, name):
        return getattr(self._vault, name)

    def unwrap_key(self, key_id, wrapped, algorithm="RSA-OAEP-256"):
        if self._random.random() < self._rate:
            self.throttled += 1
            raise Throttled("429", retry_after=None)
        return self._vault.unwrap_key(key_id, wrapped, algorithm)


def test_throttling_never_fails_a_dek_it_only_retries_it(world):
    plaintexts = _seed(world, MYSQL, 60)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    throttling = ThrottlingVault(world.vault, 0.4)
    _drain(world, vault=throttling)
    assert throttling.throttled > 0
    _assert_all_open_on(world, plaintexts, new.key_id)


def test_a_page_fails_only_when_every_dek_of_it_failed(world):
    _seed(world, MYSQL, 5, partition="mysql-000")
    new = _rotate(world, MYSQL)
    message = RewrapMessage(MYSQL, new.key_id, "mysql-000").to_json()
    with pytest.raises(WholePageFailed):
        rewrap_page(message, **{**_worker_ports(world), "vault": ThrottlingVault(world.vault, 1.0)})


def test_a_page_waits_for_the_next_budget_window_and_never_spends_more_than_a_window(world):
    plaintexts = _seed(world, MYSQL, 30, partition="mysql-000")
    new = _rotate(world, MYSQL)
    budget = WindowBudget(12)
    message = RewrapMessage(MYSQL, new.key_id, "mysql-000").to_json()
    outcome = rewrap_page(message, **_worker_ports(world, budget))
    assert (outcome.succeeded, outcome.deferred) == (30, 0)  # three windows, waited for in-process
    assert max(budget.used.values()) == 12 and len(budget.used) == 3
    _assert_all_open_on(world, plaintexts, new.key_id)


def test_deks_beyond_what_the_budget_gives_within_two_windows_are_deferred_not_dropped(world):
    plaintexts = _seed(world, MYSQL, 30, partition="mysql-000")
    new = _rotate(world, MYSQL)
    message = RewrapMessage(MYSQL, new.key_id, "mysql-000").to_json()
    first = rewrap_page(message, **_worker_ports(world, ExhaustibleBudget(12)))
    assert (first.succeeded, first.deferred) == (12, 18)
    [retry] = world.rewrap_queue.messages
    assert retry.delay_seconds == 4 and len(retry.message["dek_ids"]) == 18
    _drain(world)
    _assert_all_open_on(world, plaintexts, new.key_id)


def test_four_workers_on_the_same_shards_lose_no_update(world):
    plaintexts = _seed(world, MYSQL, 120)
    new = _rotate(world, MYSQL)
    messages = [RewrapMessage(MYSQL, new.key_id, shard).to_json() for shard in all_shards("mysql-")]
    barrier = threading.Barrier(4)
    errors = []

    def worker() -> None:
        barrier.wait()
        try:
            for message in messages:
                rewrap_page(message, **_worker_ports(world))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _drain(world)
    _assert_all_open_on(world, plaintexts, new.key_id)


class Crash(BaseException):
    """A process death, at a step of the worker's choosing (BaseException: nothing in the handler may catch it)."""


class CrashingStore:
    def __init__(self, store, rng: random.Random, rate: float) -> None:
        self._store, self._rng, self._rate = store, rng, rate

    def __getattr__(self, name):
        return getattr(self._store, name)

    def replace(self, dek):
        if self._rng.random() < self._rate:
            raise Crash("before the write")
        stored = self._store.replace(dek)
        if self._rng.random() < self._rate:
            raise Crash("after the write, before anything else")
        return stored


@pytest.mark.parametrize("seed", range(5))
def test_a_worker_that_dies_at_any_point_loses_no_dek(world, seed):
    plaintexts = _seed(world, MYSQL, 80)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    rng = random.Random(seed)
    pending = world.rewrap_queue.drain()
    for _ in range(200):
        if not pending:
            break
        message = pending.pop(0)
        ports = {**_worker_ports(world), "dekstore": CrashingStore(world.dekstore, rng, 0.05)}
        try:
            rewrap_page(message, **ports)
        except Crash:
            pending.append(message)  # not acknowledged: the queue delivers it again
        pending.extend(world.rewrap_queue.drain())
        for (partition, dek_id), original in plaintexts.items():  # at every point, every DEK still opens
            dek = world.dekstore.get(partition, dek_id)
            assert world.vault.unwrap_key(dek.key_id, dek.wrapped, dek.algorithm) == original
    assert not pending
    _assert_all_open_on(world, plaintexts, new.key_id)


def test_malformed_messages_are_refused_naming_the_field(world):
    with pytest.raises(MalformedMessage) as err:
        rewrap_page({"version": 1, "key": MYSQL, "target": "not-a-key-id", "partition": "p"}, **_worker_ports(world))
    assert err.value.field == "target"
    with pytest.raises(MalformedMessage) as err:
        rewrap_page(None, **_worker_ports(world))
    assert err.value.field == "message"


def _with_retirement(world, days: str = "P30D"):
    import dataclasses

    from shared.inventory.model import IsoDuration

    keys = tuple(
        dataclasses.replace(k, rotation=dataclasses.replace(k.rotation, retire_after=IsoDuration(days, timedelta(30))))
        for k in world.inventory.keys
    )
    world.inventory = dataclasses.replace(world.inventory, keys=keys)


def test_the_guard_keeps_a_version_that_a_dek_or_a_consumer_still_needs(world):
    _with_retirement(world)
    _seed(world, MYSQL, 5)
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate(world, MYSQL)
    world.clock.advance(timedelta(days=31))
    retire = {
        "vault": world.vault, "dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit,
        "alerts": world.alerts, "clock": world.clock,
    }  # fmt: skip
    [decision] = retire_unused_versions(world.key(MYSQL), enforce=True, **retire)
    assert not decision.allowed and any("DEK" in b for b in decision.blockers)
    assert any("consumer" in b for b in decision.blockers)
    assert world.vault.get_key(world.key(MYSQL).ref, old.version).enabled
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    _drain(world)
    _drain_moves(world)
    [decision] = retire_unused_versions(world.key(MYSQL), enforce=True, **retire)
    assert decision.allowed
    assert not world.vault.get_key(world.key(MYSQL).ref, old.version).enabled
    outcomes = [r.outcome for r in world.audit.all() if r.action == "retire-version"]
    assert outcomes == ["planned", "retired"]


def test_the_sweep_resumes_a_stalled_rewrap_moves_stragglers_and_then_retires(world):
    _with_retirement(world)
    plaintexts = _seed(world, MYSQL, 20)
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate(world, MYSQL)  # the event was lost: nobody fanned out
    first = run_sweep(**world.sweep_ports())
    mysql = next(d for d in first.dependents if d.key == MYSQL)
    assert mysql.resumed_shards == 16 and mysql.moved  # every shard of the key, known without a scan
    _drain(world)
    _drain_moves(world)
    _assert_all_open_on(world, plaintexts, new.key_id)
    world.clock.advance(timedelta(days=31))
    run_sweep(**world.sweep_ports())
    assert not world.vault.get_key(world.key(MYSQL).ref, old.version).enabled
    state = world.consumers.get_state("mysql-flexible-server", world.key(MYSQL).consumers[0].resource_id)
    assert state.key_url == new.key_id


def test_the_keys_status_shows_deks_per_version_the_consumers_and_the_rewrap_in_flight(world):
    from functions.api.key_status import keys_status

    _seed(world, MYSQL, 150, partition="mysql-000")
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate(world, MYSQL)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    first = next(m for m in world.rewrap_queue.drain() if m["partition"] == "mysql-000")
    rewrap_page(first, **_worker_ports(world))  # one page of 100 done, its continuation still queued
    _drain_moves(world)
    skip = ("alerts", "claims", "pacer", "rewrap_queue", "move_queue", "revocations")
    ports = {k: v for k, v in world.sweep_ports().items() if k not in skip}
    body = keys_status(**ports)
    mysql = next(k for k in body["keys"] if k["name"] == MYSQL)["dependents"]
    assert mysql["deks_by_version"] == {old.version: 50, new.version: 100}
    assert mysql["rewrap"] == {
        "target_version": new.version,
        "processed": 100,
        "succeeded": 100,
        "failed": 0,
        "remaining": 50,
        "running": True,
        "rate_per_minute": mysql["rewrap"]["rate_per_minute"],  # since the start record: the status page shows it
    }
    assert mysql["rewrap"]["rate_per_minute"] > 0
    [server] = mysql["consumers"]
    assert (server["kind"], server["version"], server["available"]) == ("mysql-flexible-server", new.version, True)


def test_a_poisoned_page_alerts_with_where_it_was_and_nothing_secret(world):
    from functions.rewrap.poison import POISONED_ALERT, alert_poisoned_page

    message = RewrapMessage(MYSQL, world.vault.get_key(world.key(MYSQL).ref).key_id, "mysql-007").to_json()
    alert = alert_poisoned_page(message, alerts=world.alerts)
    assert (alert.type, alert.severity.value) == (POISONED_ALERT, "high")
    assert alert.data["partition"] == "mysql-007" and world.alerts.published == [alert]
    odd = alert_poisoned_page({"version": 9}, alerts=world.alerts)
    assert odd.data == {"malformed": "version"}
