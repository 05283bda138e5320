"""The counters and the key hierarchy as one picture, over the fakes: a DEK under a shard key counts on the KEK
version that wraps its shard key (status, one key's versions, a dry-run plan, retirement, the fan-out's count, the
sweep's gauges), migration and shard-key rotation keep the counters exact, and the sweep's targeted resume pages
neither a shard whose DEKs are all under current shard keys nor one with nothing behind."""

from __future__ import annotations

from datetime import timedelta

from functions.api.key_view import key_detail
from functions.revocation import revoke
from functions.rewrap.worker import REWRAP_ACTION
from functions.sweep_dependents import tend_dependents
from shared.envelope import (
    ShardKeyCache,
    count_by_version,
    deks_per_kek_version,
    migrate_shard,
    rotate_shard_key,
)
from shared.http.commands import RevokeCommand
from shared.model import ShardKey
from tests.fakes.outbound import FakeWorkQueue
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.unit.api.test_status_page import _ports as status_ports
from tests.unit.rewrap.test_rewrap import MYSQL, _seed, _worker_ports
from tests.unit.rewrap.test_shard_key_rewrap import (
    BrokenShardKeys,
    _drain,
    _hierarchical,
    _make,
    _retire,
    _rotate_and_fan_out,
)

KEK = "https://kv.vault.azure.net/keys/k"


def _sk(shard: str, generation: int, version: str) -> ShardKey:
    return ShardKey(shard, generation, f"{KEK}/{version}", "RSA-OAEP-256", b"x", "kcv")


def test_a_dek_under_a_shard_key_counts_on_its_shard_keys_kek_version_and_on_none_without_it():
    counters = {
        "k-000": {f"{KEK}/v1": 2, f"{KEK}/shards/k-000/g1": 5, f"{KEK}/shards/k-000/g2": 1},
        "K-001": {f"{KEK}/shards/k-001/g1": 7},  # normalised ids are lower-case; the shard's name may not be
    }
    shard_keys = [_sk("k-000", 1, "v1"), _sk("k-000", 2, "v2"), _sk("K-001", 1, "v2")]
    assert count_by_version(counters, shard_keys) == {f"{KEK}/v1": 7, f"{KEK}/v2": 8}
    assert count_by_version(counters) == {f"{KEK}/v1": 2}  # a shard key's own id is no KEK version
    # A generation already gone (a rotation finished between the two reads) counts on no version rather than a guess.
    assert count_by_version(counters, shard_keys[:1]) == {f"{KEK}/v1": 7}


def test_migration_both_ways_and_a_shard_key_rotation_keep_the_counters_exact(world):
    _hierarchical(world)
    shardkeys, cache = FakeShardKeyStore(), ShardKeyCache(300)
    managed = world.key(MYSQL)
    plaintexts = _seed(world, MYSQL, 40)  # flat, from before the key chose shard keys
    current = world.vault.get_key(managed.ref)
    shards = sorted({p for p, _ in plaintexts})
    ports = {"vault": world.vault, "store": world.dekstore, "shardkeys": shardkeys, "cache": cache}

    def settled() -> dict[str, int]:
        assert world.dekstore.reconcile(managed.ref) == {}  # the counters agree with a scan of the rows
        return deks_per_kek_version(managed, world.dekstore, shardkeys)

    assert settled() == {current.key_id.lower(): 40}
    for shard in shards:
        migrate_shard(managed, shard, to="shard-keys", **ports)
    assert settled() == {current.key_id.lower(): 40}
    assert count_by_version(world.dekstore.shard_counts(managed.ref)) == {}  # every DEK is under a shard key now
    rotate_shard_key(managed, shards[0], **ports)
    assert settled() == {current.key_id.lower(): 40}
    migrate_shard(managed, shards[0], to="flat", **ports)
    assert settled() == {current.key_id.lower(): 40}
    assert not shardkeys.list_shard(shards[0])


def test_status_versions_a_dry_run_plan_retirement_and_the_fan_out_count_deks_under_shard_keys(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 60)
    old = world.vault.get_key(world.key(MYSQL).ref)
    new = _rotate_and_fan_out(world, shardkeys)
    records = world.audit.page(key=MYSQL, page_size=50).items
    [started] = [r for r in records if r.action == REWRAP_ACTION and r.outcome == "started"]
    assert started.detail["deks"] == 60  # the fan-out's count: the DEKs under shard keys on the old version

    body = key_detail(MYSQL, **status_ports(world), shardkeys=shardkeys)
    assert body["dependents"]["deks_by_version"] == {old.version: 60}
    assert {v["version"]: v["deks"] for v in body["versions"]} == {old.version: 60, new.version: 0}

    command = RevokeCommand(MYSQL, "disable-key", "shred", "alice", confirm=MYSQL)
    outcome = revoke(command, **world.revocation_ports(FakeWorkQueue(), follow_up_delay=60))
    assert outcome.plan is not None and outcome.plan.deks_unreadable == 60  # a dry run: nothing changed
    assert world.vault.get_key(world.key(MYSQL).ref).enabled

    world.clock.advance(timedelta(days=31))
    [decision] = _retire(world, shardkeys)
    assert not decision.allowed and any("DEK" in b for b in decision.blockers)
    assert any("shard key(s) are wrapped by it" in b for b in decision.blockers)

    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    body = key_detail(MYSQL, **status_ports(world), shardkeys=shardkeys)
    assert {v["version"]: v["deks"] for v in body["versions"]} == {old.version: 0, new.version: 60}
    [decision] = _retire(world, shardkeys)
    assert decision.blockers == ("a consumer uses it",)  # the MySQL server's move is another story: no DEK blocks


def test_retirement_reads_no_dek_row_for_a_shard_keys_key_and_blocks_on_unreadable_shard_keys(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 30)
    old = world.vault.get_key(world.key(MYSQL).ref)
    _rotate_and_fan_out(world, shardkeys)
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    world.clock.advance(timedelta(days=31))

    class NoScan:
        """The DEK store with every row-reading call refused: only the counters and the probe may be used."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name):
            if name in ("list_page", "count_by_key_id", "get", "reconcile", "partitions"):
                raise AssertionError(f"retirement read DEK rows ({name})")
            return getattr(self.inner, name)

    world.dekstore = NoScan(world.dekstore)
    [broken] = _retire(world, BrokenShardKeys())
    assert not broken.allowed and "the shard keys could not be read" in broken.blockers
    [decision] = _retire(world, shardkeys)
    assert decision.blockers == ("a consumer uses it",)  # neither a DEK nor a shard key holds it: no row was read
    assert world.vault.get_key(world.key(MYSQL).ref, old.version).enabled


def test_the_sweep_resumes_only_the_shards_whose_shard_keys_are_behind(world):
    _hierarchical(world)
    shardkeys = FakeShardKeyStore()
    _make(world, shardkeys, 40)
    lagging = set(sorted({sk.shard for sk in shardkeys.list_prefix("mysql-")})[:3])
    new = _rotate_and_fan_out(world, shardkeys)
    # The pages of three shards are lost; every other shard's shard key moves.
    kept = [m for m in world.rewrap_queue.drain() if m["partition"] not in lagging]
    for m in kept:
        world.rewrap_queue.send(m)
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    behind = {sk.shard for sk in shardkeys.list_prefix("mysql-") if sk.kek_id.lower() != new.key_id.lower()}
    assert behind == lagging
    skip = ("access", "roles", "vault_settings", "pacer", "revocations")
    ports = {k: v for k, v in world.sweep_ports().items() if k not in skip}
    world.clock.advance(timedelta(hours=1))
    [mysql] = [d for d in tend_dependents(**ports, shardkeys=shardkeys) if d.key == MYSQL]
    assert set(mysql.resumed) == lagging  # a page for each shard behind, none for a shard with nothing behind
    _drain(world, {**_worker_ports(world), "shardkeys": shardkeys})
    assert {sk.kek_id.lower() for sk in shardkeys.list_prefix("mysql-")} == {new.key_id.lower()}
    world.clock.advance(timedelta(hours=1))
    [again] = [d for d in tend_dependents(**ports, shardkeys=shardkeys) if d.key == MYSQL]
    assert again.resumed == ()
