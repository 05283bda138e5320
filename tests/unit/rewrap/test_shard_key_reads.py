"""Issue 21: a KEK rotation of a shard-keys key costs one unwrapKey per shard plus O(1) key reads, not a read of the
current version per shard message; and "never backwards" is decided from state (each shard-key row's KEK version
creation time), so a message delivered after the next rotation moves nothing back."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

from functions.rewrap.worker import COMPLETED_ALERT, rewrap_page
from shared.envelope import CachedKeyReads
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.unit.rewrap.test_rewrap import UnlimitedBudget, _worker_ports
from tests.unit.rewrap.test_shard_key_rewrap import SHARDS, _drain, _hierarchical, _make, _rotate_and_fan_out


class CountingVault:
    """The fake vault, counting what would reach Key Vault."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, Counter()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def _process(world, counting):
    """One process's vault port, as shared.bootstrap builds it, over the counted fake."""
    reads = CachedKeyReads(counting)
    world.vault = reads
    return reads


def _ports(world, shardkeys):
    return {**_worker_ports(world, UnlimitedBudget()), "shardkeys": shardkeys}


def test_a_rotation_reads_the_key_once_not_once_per_shard(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 200)
    counting = CountingVault(world.vault)
    _process(world, counting)
    new = _rotate_and_fan_out(world, shardkeys)
    outcomes = _drain(world, _ports(world, shardkeys))
    assert len(outcomes) == SHARDS and sum(o.completed for o in outcomes) == 1
    assert counting.calls["unwrap_key"] == SHARDS
    assert counting.calls["get_key"] + counting.calls["list_versions"] == 1  # the fan-out's read of the current version
    rows = shardkeys.list_prefix("mysql-")
    assert {r.kek_version for r in rows} == {new.version} and {r.kek_created for r in rows} == {new.created}


def test_rows_written_before_kek_created_read_their_version_once_per_process(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 200)
    for row in shardkeys.list_prefix("mysql-"):
        shardkeys.replace(dataclasses.replace(row, kek_created=None))  # as stored before the field existed
    counting = CountingVault(world.vault)
    _process(world, counting)
    new = _rotate_and_fan_out(world, shardkeys)
    _drain(world, _ports(world, shardkeys))
    assert counting.calls["unwrap_key"] == SHARDS
    assert counting.calls["get_key"] == 2  # the current version, and the old one once (not once per shard)
    assert {r.kek_version for r in shardkeys.list_prefix("mysql-")} == {new.version}


def test_a_late_message_of_an_older_rotation_moves_nothing_back(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 200)
    counting = CountingVault(world.vault)
    _process(world, counting)
    first = _rotate_and_fan_out(world, shardkeys)
    late = world.rewrap_queue.drain()  # the first rotation's shard messages, held back (a dead instance's lease)
    assert len(late) == SHARDS
    second = _rotate_and_fan_out(world, shardkeys)
    _drain(world, _ports(world, shardkeys))
    assert {r.kek_version for r in shardkeys.list_prefix("mysql-")} == {second.version}
    before, unwraps = shardkeys.list_prefix("mysql-"), counting.calls["unwrap_key"]
    completed = [a.type for a in world.alerts.published].count(COMPLETED_ALERT)
    outcomes = [rewrap_page(m, **_ports(world, shardkeys)) for m in late]
    assert all(o.superseded and not o.succeeded for o in outcomes)
    assert shardkeys.list_prefix("mysql-") == before  # same rows, same ETags: nothing written
    assert counting.calls["unwrap_key"] == unwraps
    assert [a.type for a in world.alerts.published].count(COMPLETED_ALERT) == completed
    assert first.version != second.version and not world.rewrap_queue.drain()  # nor does it continue a chain


def test_a_late_message_finds_rows_without_kek_created_newer_through_their_version(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 50)
    _process(world, CountingVault(world.vault))
    _rotate_and_fan_out(world, shardkeys)
    late = world.rewrap_queue.drain()
    second = _rotate_and_fan_out(world, shardkeys)
    _drain(world, _ports(world, shardkeys))
    for row in shardkeys.list_prefix("mysql-"):
        shardkeys.replace(dataclasses.replace(row, kek_created=None))
    before = shardkeys.list_prefix("mysql-")
    outcomes = [rewrap_page(m, **_ports(world, shardkeys)) for m in late]
    assert all(o.superseded for o in outcomes)
    assert shardkeys.list_prefix("mysql-") == before
    assert {r.kek_version for r in before} == {second.version}


def test_a_version_created_in_the_same_second_falls_back_to_reading_the_current_version(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 50)
    counting = CountingVault(world.vault)
    _process(world, counting)
    world.clock.advance(-timedelta(seconds=1))  # the rotation lands in the creation second
    new = _rotate_and_fan_out(world, shardkeys)
    _drain(world, _ports(world, shardkeys))
    assert {r.kek_version for r in shardkeys.list_prefix("mysql-")} == {new.version}
    assert counting.calls["get_key"] == 1 + SHARDS  # undecidable from state: each message reads the current version
