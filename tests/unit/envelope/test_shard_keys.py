"""The key hierarchy over the fakes (real RSA in the fake vault, real AES-GCM): DEKs under shard keys, the cache's
bounded TTL, a KEK re-wrap that moves no DEK, a local shard-key rotation, and migration both ways."""

from __future__ import annotations

import dataclasses

import pytest

from shared.envelope import (
    SHARD_WRAP_ALGORITHM,
    ShardKeyCache,
    create_dek,
    create_sharded_dek,
    decrypt,
    encrypt,
    kek_versions_of,
    migrate_shard,
    open_any,
    rewrap_shard_keys,
    rotate_shard_key,
    shard_of,
)
from shared.envelope.shard_keys import ShardUnwrapFailed, generation_of, wrap_dek
from shared.errors import InvalidInput, KeyDisabled, KeyNotFound
from shared.inventory import load_inventory
from shared.inventory.model import Consumer
from shared.model import ConsumerKind, normalize_key_id
from tests.fakes.dekstore import FakeDekStore
from tests.fakes.keyvault import FakeKeyVault
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.unit.conftest import ROOT

SHARDS = 4


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def managed_key(hierarchy: str = "shard-keys", shards: int = SHARDS):
    key = load_inventory(ROOT / "inventory/reference.yaml", {}).key("mysql-encryption-key")
    options = {"table": "cmkdeks", "partition_prefix": "mysql-", "shards": shards, "hierarchy": hierarchy}
    return dataclasses.replace(key, consumers=(Consumer(ConsumerKind.DEK_TABLE, None, options),))


@pytest.fixture
def env():
    managed = managed_key()
    vault = FakeKeyVault()
    vault.create_key(managed.ref, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
    ticker = Ticker()
    return dataclasses.make_dataclass("Env", ["managed", "vault", "store", "shardkeys", "cache", "ticker"])(
        managed, vault, FakeDekStore(), FakeShardKeyStore(), ShardKeyCache(60, monotonic=ticker), ticker
    )


def _ports(env):
    return {"vault": env.vault, "store": env.store, "shardkeys": env.shardkeys, "cache": env.cache}


def _make(env, n: int) -> list:
    handles = []
    for i in range(n):
        with create_sharded_dek(env.managed, dek_id=f"dek-{i:04d}", **_ports(env)) as h:
            handles.append((h.partition, h.dek_id, encrypt(h, b"secret %d" % i, b"row")))
    return handles


def _open_all(env, handles) -> None:
    for partition, dek_id, blob in handles:
        with open_any(partition, dek_id, **_ports(env)) as h:
            assert decrypt(h, blob, b"row") == b"secret %d" % int(dek_id.rsplit("-", 1)[1])


def test_dek_under_a_shard_key_round_trips_and_one_unwrap_serves_a_shard(env):
    handles = _make(env, 40)
    shards = {p for p, _, _ in handles}
    assert len(shards) == SHARDS
    assert env.vault.unwrap_calls == 0  # each shard key made here (wrapped locally) and remembered: no call at all
    env.cache.clear()
    _open_all(env, handles)
    assert env.vault.unwrap_calls == SHARDS  # one unwrap per shard, none per DEK
    record = env.store.get(*handles[0][:2])
    assert record.algorithm == SHARD_WRAP_ALGORITHM and generation_of(record.key_id) == 1
    assert env.store.count_by_key_id(env.managed.ref) == {}  # no DEK depends on a KEK version itself
    assert set(kek_versions_of(env.shardkeys.list_prefix("mysql-"))) == {
        normalize_key_id(env.vault.get_key(env.managed.ref).key_id)
    }


def test_wrapped_dek_is_bound_to_its_id_and_shard(env):
    partition, dek_id, _ = _make(env, 1)[0]
    record = env.store.get(partition, dek_id)
    other = dataclasses.replace(record, dek_id="another")
    env.store.add(dataclasses.replace(other, etag=None))
    with pytest.raises(ShardUnwrapFailed):
        open_any(partition, "another", **_ports(env))


def test_the_cache_ttl_bounds_how_long_a_disabled_kek_still_opens(env):
    handles = _make(env, 8)
    current = env.vault.get_key(env.managed.ref)
    env.vault.update_version(env.managed.ref, current.version, enabled=False)  # crypto-shred
    env.ticker.t = 59.0
    _open_all(env, handles)  # within the TTL: from memory
    env.ticker.t = 60.0
    for partition, dek_id, _ in handles:
        with pytest.raises(KeyDisabled):
            open_any(partition, dek_id, **_ports(env))
    env.ticker.t = 1000.0  # use never renewed anything: still refused
    with pytest.raises(KeyDisabled):
        open_any(*handles[0][:2], **_ports(env))


def test_a_cache_never_hands_one_identitys_unwrap_to_another(env):
    handles = _make(env, 4)
    other = FakeKeyVault()  # another identity's port: has no access to this key at all
    with pytest.raises(KeyNotFound):
        open_any(*handles[0][:2], vault=other, store=env.store, shardkeys=env.shardkeys, cache=env.cache)


def test_kek_rotation_rewraps_shard_keys_only_with_one_unwrap_each(env):
    handles = _make(env, 60)
    before = {(d.partition, d.dek_id): d for p in env.store.partitions() for d in env.store.list_page(p).items}
    target = env.vault.rotate_key(env.managed.ref)
    calls = env.vault.unwrap_calls
    done = [
        rewrap_shard_keys(env.managed, s, target, vault=env.vault, shardkeys=env.shardkeys)
        for s in env.store.partitions()
    ]
    assert env.vault.unwrap_calls - calls == SHARDS == sum(d.vault_calls for d in done)
    after = {(d.partition, d.dek_id): d for p in env.store.partitions() for d in env.store.list_page(p).items}
    assert after == before  # not one DEK row written
    assert set(kek_versions_of(env.shardkeys.list_prefix("mysql-"))) == {normalize_key_id(target.key_id)}
    again = [
        rewrap_shard_keys(env.managed, s, target, vault=env.vault, shardkeys=env.shardkeys)
        for s in env.store.partitions()
    ]
    assert sum(d.vault_calls for d in again) == 0  # idempotent
    old = next(v for v in env.vault.list_versions(env.managed.ref) if v.version != target.version)
    env.vault.update_version(env.managed.ref, old.version, enabled=False)
    env.cache.clear()
    _open_all(env, handles)  # everything opens with the old KEK version disabled


def test_shard_key_rotation_moves_dek_locally_and_deletes_the_old_generation(env):
    handles = _make(env, 40)
    shard = handles[0][0]
    calls = env.vault.unwrap_calls
    change = rotate_shard_key(env.managed, shard, **_ports(env))
    assert change.finished and change.generation == 2 and change.moved == sum(1 for p, _, _ in handles if p == shard)
    assert env.vault.unwrap_calls == calls  # old key cached; the new one made here: no Key Vault call
    assert [sk.generation for sk in env.shardkeys.list_shard(shard)] == [2]
    assert {generation_of(d.key_id) for d in env.store.list_page(shard).items} == {2}
    env.cache.clear()
    _open_all(env, handles)


def test_shard_key_rotation_resumes_after_a_crash_and_refuses_a_bad_dek(env):
    handles = _make(env, 20)
    shard = handles[0][0]
    victim = next(d for d in env.store.list_page(shard).items)
    env.store.replace(dataclasses.replace(victim, kcv="0" * 16))  # a DEK whose check value no longer matches
    change = rotate_shard_key(env.managed, shard, **_ports(env))
    assert change.refused == (victim.dek_id,) and not change.finished
    assert [sk.generation for sk in env.shardkeys.list_shard(shard)] == [1, 2]  # old kept: a DEK still needs it
    again = rotate_shard_key(env.managed, shard, **_ports(env))
    assert again.generation == 2 and again.moved == 0  # resumed, not a third generation
    good = [h for h in handles if h[1] != victim.dek_id]
    _open_all(env, good)


def test_migration_flat_to_shard_keys_and_back_keeps_every_dek(env):
    flat = dataclasses.replace(env.managed, consumers=(dataclasses.replace(
        env.managed.consumers[0], options={**env.managed.consumers[0].options, "hierarchy": "flat"}),))  # fmt: skip
    handles = []
    for i in range(30):
        with create_dek(flat, vault=env.vault, store=env.store, dek_id=f"f-{i}") as h:
            handles.append((h.partition, h.dek_id, encrypt(h, b"secret %d" % i, b"row")))
    shards = sorted({p for p, _, _ in handles})
    first = migrate_shard(env.managed, shards[0], to="shard-keys", **_ports(env))
    assert first.finished and all(sk.migrated for sk in env.shardkeys.list_shard(shards[0]))
    _open_all(env, handles)  # half-migrated: both kinds open
    for shard in shards[1:]:
        migrate_shard(env.managed, shard, to="shard-keys", **_ports(env))
    assert env.store.count_by_key_id(env.managed.ref) == {}
    assert migrate_shard(env.managed, shards[0], to="shard-keys", **_ports(env)).moved == 0  # idempotent
    for shard in shards:
        back = migrate_shard(flat, shard, to="flat", **_ports(env))
        assert back.finished and env.shardkeys.list_shard(shard) == []
    assert sum(env.store.count_by_key_id(env.managed.ref).values()) == 30
    env.cache.clear()
    _open_all(env, handles)
    with pytest.raises(InvalidInput):
        migrate_shard(env.managed, shards[0], to="tree", **_ports(env))


def test_a_dek_sealed_under_a_deleted_generation_is_resealed_at_creation(env, monkeypatch):
    handles = _make(env, 8)
    shard = handles[0][0]
    before = env.shardkeys.list_shard(shard)  # what a creator read just before the rotation finished
    rotate_shard_key(env.managed, shard, **_ports(env))
    real, calls = env.shardkeys.list_shard, []

    def first_stale(s):
        calls.append(s)
        return before if len(calls) == 1 else real(s)

    monkeypatch.setattr(env.shardkeys, "list_shard", first_stale)
    dek_id = next(f"x{i}" for i in range(1000) if shard_of(f"x{i}", "mysql-", SHARDS) == shard)
    with create_sharded_dek(env.managed, dek_id=dek_id, **_ports(env)) as h:
        blob = encrypt(h, b"late", b"row")
    assert generation_of(env.store.get(shard, dek_id).key_id) == 2  # never names the deleted generation 1
    with open_any(shard, dek_id, **_ports(env)) as h:
        assert decrypt(h, blob, b"row") == b"late"


def test_a_sealed_dek_is_nonce_ciphertext_and_tag():
    assert len(wrap_dek(b"k" * 32, "s000", "d", b"x" * 32)) == 12 + 32 + 16


def test_an_open_that_races_a_finished_shard_key_rotation_reads_the_row_again(env, monkeypatch):
    handles = _make(env, 8)
    partition, dek_id, blob = handles[0]
    stale = env.store.get(partition, dek_id)  # read before the rotation moved it to generation 2
    rotate_shard_key(env.managed, partition, **_ports(env))
    real, reads = env.store.get, []

    def first_stale(p, d):
        reads.append((p, d))
        return stale if len(reads) == 1 else real(p, d)

    monkeypatch.setattr(env.store, "get", first_stale)
    with open_any(partition, dek_id, **_ports(env)) as h:
        assert decrypt(h, blob, b"row") == b"secret 0"
    assert len(reads) == 2


def test_racing_shard_key_rotations_and_a_kek_rewrap_leave_every_dek_openable(env):
    import threading

    handles = _make(env, 120)
    shard = handles[0][0]
    target = env.vault.rotate_key(env.managed.ref)
    errors = []

    def run(fn):
        try:
            fn()
        except Exception as exc:
            errors.append(exc)

    jobs = [
        lambda: rotate_shard_key(env.managed, shard, **_ports(env)),
        lambda: rotate_shard_key(env.managed, shard, **_ports(env)),
        lambda: rewrap_shard_keys(env.managed, shard, target, vault=env.vault, shardkeys=env.shardkeys),
    ]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rotate_shard_key(env.managed, shard, **_ports(env))  # whatever the race left, a re-run finishes it
    rewrap_shard_keys(env.managed, shard, target, vault=env.vault, shardkeys=env.shardkeys)
    assert len(env.shardkeys.list_shard(shard)) == 1
    env.cache.clear()
    _open_all(env, handles)
