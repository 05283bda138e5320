"""A KEK rotation of a `hierarchy: shard-keys` key over the fakes: the fan-out's messages re-wrap shard keys (one
unwrap each) and move no DEK, a migrated shard's DEK rows are not even read, the completion alert still comes once,
the retirement guard keeps a version while a shard key needs it, and the sweep resumes a re-wrap it finds behind."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from functions.rewrap.fan_out import on_new_version
from functions.rewrap.worker import COMPLETED_ALERT, rewrap_page
from functions.rotation.retirement import retire_unused_versions
from functions.sweep_dependents import tend_dependents
from shared.envelope import ShardKeyCache, create_sharded_dek, decrypt, encrypt, migrate_shard, open_any
from shared.errors import ServiceUnavailable
from shared.events import KeyNewVersionCreated
from shared.inventory.model import IsoDuration
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.unit.rewrap.test_rewrap import MYSQL, UnlimitedBudget, _seed, _worker_ports

SHARDS = 16


class CountingStore:
    """The DEK store, counting the rows a worker reads and writes."""

    def __init__(self, inner) -> None:
        self.inner, self.listed, self.replaced = inner, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def list_page(self, *args, **kwargs):
        self.listed += 1
        return self.inner.list_page(*args, **kwargs)

    def replace(self, dek):
        self.replaced += 1
        return self.inner.replace(dek)


class BrokenShardKeys(FakeShardKeyStore):
    def list_prefix(self, prefix):
        raise ServiceUnavailable("table down")


def _hierarchical(world, **more: str) -> None:
    keys = []
    for k in world.inventory.keys:
        if k.name == MYSQL:
            table = next(c for c in k.consumers if c.kind.value == "dek-table")
            options = {**table.options, "hierarchy": "shard-keys", **more}
            consumers = tuple(dataclasses.replace(c, options=options) if c is table else c for c in k.consumers)
            k = dataclasses.replace(
                k, consumers=consumers,
                rotation=dataclasses.replace(k.rotation, retire_after=IsoDuration("P30D", timedelta(30))),
            )  # fmt: skip
        keys.append(k)
    world.inventory = dataclasses.replace(world.inventory, keys=tuple(keys))


def _make(world, shardkeys, count: int) -> dict:
    cache = ShardKeyCache(300)
    blobs = {}
    for i in range(count):
        with create_sharded_dek(world.key(MYSQL), vault=world.vault, store=world.dekstore, shardkeys=shardkeys,
                                cache=cache, dek_id=f"sk-{i:04d}") as dek:  # fmt: skip
            blobs[(dek.partition, dek.dek_id)] = encrypt(dek, b"plain %d" % i)
    return blobs


def _drain(world, ports) -> list:
    outcomes = []
    for _ in range(100):
        messages = world.rewrap_queue.drain()
        if not messages:
            return outcomes
        outcomes += [rewrap_page(m, **ports) for m in messages]
    raise AssertionError("did not converge")


def _rotate_and_fan_out(world, shardkeys):
    world.clock.advance(timedelta(seconds=1))
    new = world.vault.rotate_key(world.key(MYSQL).ref)
    event = world.key_event(KeyNewVersionCreated, MYSQL, new.version)
    on_new_version(event, **world.rewrap_ports(), shardkeys=shardkeys)
    return new


def _retire(world, shardkeys):
    ports = {
        "vault": world.vault, "dekstore": world.dekstore, "consumers": world.consumers, "audit": world.audit,
        "alerts": world.alerts, "clock": world.clock, "shardkeys": shardkeys,
    }  # fmt: skip
    return retire_unused_versions(world.key(MYSQL), enforce=True, **ports)


def test_a_kek_rotation_rewraps_one_shard_key_per_shard_and_moves_no_dek(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    blobs = _make(world, shardkeys, 300)
    old = world.vault.get_key(world.key(MYSQL).ref)
    rows_before = {k: world.dekstore.get(*k) for k in blobs}
    new = _rotate_and_fan_out(world, shardkeys)
    store = CountingStore(world.dekstore)
    budget = UnlimitedBudget()
    ports = {**_worker_ports(world, budget), "dekstore": store, "shardkeys": shardkeys}
    calls = world.vault.unwrap_calls
    outcomes = _drain(world, ports)
    assert world.vault.unwrap_calls - calls == SHARDS == budget.reserved  # one unwrap per shard, within the budget
    assert store.replaced == 0 and store.listed == 0  # migrated shards: not one DEK row read or written
    assert {k: world.dekstore.get(*k) for k in blobs} == rows_before
    assert {sk.kek_version for sk in shardkeys.list_prefix("mysql-")} == {new.version}
    assert sum(o.completed for o in outcomes) == 1
    assert [a.type for a in world.alerts.published].count(COMPLETED_ALERT) == 1
    world.vault.update_version(world.key(MYSQL).ref, old.version, enabled=False)
    cache = ShardKeyCache(300)
    for (partition, dek_id), blob in blobs.items():
        with open_any(partition, dek_id, vault=world.vault, store=world.dekstore, shardkeys=shardkeys,
                      cache=cache) as dek:  # fmt: skip
            assert decrypt(dek, blob) == b"plain %d" % int(dek_id[3:])


def test_a_half_migrated_shard_rewraps_its_flat_deks_and_its_shard_key(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    plaintexts = _seed(world, MYSQL, 40)  # flat DEKs, from before the key chose shard keys
    first = sorted({p for p, _ in plaintexts})[0]
    migrate_shard(world.key(MYSQL), first, to="shard-keys", vault=world.vault, store=world.dekstore,
                  shardkeys=shardkeys, cache=ShardKeyCache(300))  # fmt: skip
    new = _rotate_and_fan_out(world, shardkeys)
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    counts = world.dekstore.count_by_key_id(world.key(MYSQL).ref)
    flat_left = sum(1 for p, _ in plaintexts if p != first)
    assert counts == {new.key_id.lower(): flat_left}
    assert [sk.kek_version for sk in shardkeys.list_shard(first)] == [new.version]
    assert [a.type for a in world.alerts.published].count(COMPLETED_ALERT) == 1


def test_retirement_waits_for_the_shard_keys_and_blocks_when_they_cannot_be_read(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 50)
    old = world.vault.get_key(world.key(MYSQL).ref)
    world.clock.advance(timedelta(seconds=1))
    world.vault.rotate_key(world.key(MYSQL).ref)
    world.clock.advance(timedelta(days=31))
    [decision] = _retire(world, shardkeys)
    wrapped = len(shardkeys.list_prefix("mysql-"))
    assert wrapped > 0 and f"{wrapped} shard key(s) are wrapped by it" in decision.blockers
    [broken] = _retire(world, BrokenShardKeys())
    assert "the shard keys could not be read" in broken.blockers
    assert world.vault.get_key(world.key(MYSQL).ref, old.version).enabled


def test_the_sweep_resumes_a_rewrap_whose_shard_keys_are_behind(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 30)
    world.clock.advance(timedelta(seconds=1))
    new = world.vault.rotate_key(world.key(MYSQL).ref)  # the event was lost
    ports = {k: v for k, v in world.sweep_ports().items() if k not in ("access", "roles", "vault_settings", "pacer",
                                                                       "revocations")}  # fmt: skip
    [mysql] = [d for d in tend_dependents(**ports, shardkeys=shardkeys) if d.key == MYSQL]
    assert mysql.resumed_shards == SHARDS  # no flat DEK behind: the shard keys alone tell
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    assert {sk.kek_version for sk in shardkeys.list_prefix("mysql-")} == {new.version}
    world.clock.advance(timedelta(minutes=11))
    [again] = [d for d in tend_dependents(**ports, shardkeys=shardkeys) if d.key == MYSQL]
    assert again.resumed_shards == 0


def test_the_keys_status_shows_shard_keys_per_version_and_a_rewrap_remaining_until_they_move(world):
    from functions.api.key_status import keys_status

    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 60)
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate_and_fan_out(world, shardkeys)
    skip = ("alerts", "claims", "pacer", "rewrap_queue", "move_queue", "revocations")
    ports = {k: v for k, v in world.sweep_ports().items() if k not in skip}

    def mysql():
        body = keys_status(**ports, shardkeys=shardkeys)
        return next(k for k in body["keys"] if k["name"] == MYSQL)["dependents"]

    shards = len(shardkeys.list_prefix("mysql-"))
    before = mysql()
    assert before["shard_keys_by_version"] == {old.version: shards} and before["deks_by_version"] == {}
    assert before["rewrap"]["remaining"] == shards
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    after = mysql()
    assert after["shard_keys_by_version"] == {new.version: shards} and after["rewrap"]["remaining"] == 0


def test_shard_keys_rotate_on_their_schedule_once_each_and_every_dek_still_opens(world):
    _hierarchical(world, shard_key_rotate_after="P30D")
    shardkeys = FakeShardKeyStore()
    blobs = _make(world, shardkeys, 80)
    for row in shardkeys.list_prefix("mysql-"):  # made "now" on the test's clock
        shardkeys.replace(dataclasses.replace(row, created=world.clock.now()))
    ports = {k: v for k, v in world.sweep_ports().items() if k not in ("access", "roles", "vault_settings", "pacer",
                                                                       "revocations")}  # fmt: skip

    def sweep() -> int:
        return next(d for d in tend_dependents(**ports, shardkeys=shardkeys) if d.key == MYSQL).shard_key_rotations

    assert sweep() == 0
    world.rewrap_queue.drain()
    world.clock.advance(timedelta(days=31))
    shards = len({sk.shard for sk in shardkeys.list_prefix("mysql-")})
    assert sweep() == shards
    messages = [m for m in world.rewrap_queue.drain() if m.get("action") == "rotate-shard-key"]
    assert len(messages) == shards
    unwraps = world.vault.unwrap_calls
    outcomes = [rewrap_page(m, **{**_worker_ports(world), "shardkeys": shardkeys}) for m in messages]
    assert sum(o.succeeded for o in outcomes) == len(blobs) and all(o.completed for o in outcomes)
    assert world.vault.unwrap_calls - unwraps <= shards  # at most the old shard key, once per shard: none per DEK
    assert {sk.generation for sk in shardkeys.list_prefix("mysql-")} == {2}
    duplicate = rewrap_page(messages[0], **{**_worker_ports(world), "shardkeys": shardkeys})
    assert duplicate.skipped == 1 and duplicate.succeeded == 0  # decided from state: not due any more
    assert sweep() == 0
    assert [r.outcome for r in world.audit.all() if r.action == "rotate-shard-key"].count("rotated") == shards
    cache = ShardKeyCache(300)
    for (partition, dek_id), blob in blobs.items():
        with open_any(partition, dek_id, vault=world.vault, store=world.dekstore, shardkeys=shardkeys,
                      cache=cache) as dek:  # fmt: skip
            assert decrypt(dek, blob) == b"plain %d" % int(dek_id[3:])


def test_a_rewrap_message_with_an_unknown_action_is_malformed_and_a_rewrap_message_is_unchanged():
    import pytest

    from functions.rewrap.messages import RewrapMessage, parse_rewrap_message
    from shared.errors import MalformedMessage

    message = RewrapMessage("k", "https://kv.vault.azure.net/keys/k/v1", "k-000").to_json()
    assert "action" not in message and parse_rewrap_message(message).action == "rewrap"
    with pytest.raises(MalformedMessage) as err:
        parse_rewrap_message({**message, "action": "shred"})
    assert err.value.field == "action"
