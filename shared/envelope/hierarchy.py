"""DEKs of a `hierarchy: shard-keys` key: made and opened through their shard's key instead of the KEK.

Creating a DEK takes its shard's current shard key (making generation 1, wrapped under the KEK's current version,
the first time a shard needs one), wraps the DEK locally under it and stores the row. Opening a DEK reads its shard
key row, unwraps it through Key Vault as the caller's identity (the caller's vault port) unless the cache still
holds it, unwraps the DEK locally and checks its KCV as a flat DEK's is checked. `open_any` opens either kind, so
an application need not know which its key uses, nor whether a migration is half-way.
"""

from __future__ import annotations

import dataclasses
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.envelope.counts import count_by_version
from shared.envelope.deks import DEK_BYTES, DekHandle, KcvMismatch, key_check_value, unwrap_checked
from shared.envelope.shard_keys import (
    HIERARCHIES,
    HIERARCHY_FLAT,
    HIERARCHY_SHARD_KEYS,
    SHARD_WRAP_ALGORITHM,
    ShardKeyCache,
    generation_of,
    is_shard_wrapped,
    kcv,
    new_secret,
    shard_key_id,
    unwrap_dek,
    wrap_dek,
)
from shared.envelope.sharding import shard_count, shard_of
from shared.errors import Conflict, InvalidInput, KeyDisabled, NotFound
from shared.model import ConsumerKind, KeyVersion, ShardKey, WrappedDek
from shared.ports import DekStore, KeyVault, ShardKeyStore

_default_cache = ShardKeyCache()


def default_cache() -> ShardKeyCache:
    """The process's cache (DEFAULT_TTL_SECONDS), for callers that do not build their own from the settings."""
    return _default_cache


def dek_table_of(managed: Any) -> dict:
    for consumer in getattr(managed, "consumers", ()):
        if consumer.kind is ConsumerKind.DEK_TABLE:
            return dict(consumer.options)
    raise InvalidInput("key", f"{getattr(managed, 'name', managed)} has no dek-table consumer")


def hierarchy_of(managed: Any) -> str:
    """`flat` (the default) or `shard-keys`, from the key's dek-table consumer; flat for a key without one."""
    try:
        options = dek_table_of(managed)
    except InvalidInput:
        return HIERARCHY_FLAT
    value = options.get("hierarchy") or HIERARCHY_FLAT
    if value not in HIERARCHIES:
        raise InvalidInput("hierarchy", f"must be one of {', '.join(HIERARCHIES)}")
    return value


def is_hierarchical(managed: Any) -> bool:
    return hierarchy_of(managed) == HIERARCHY_SHARD_KEYS


def shard_prefix(managed: Any) -> str:
    return str(dek_table_of(managed).get("partition_prefix") or managed.name)


def deks_per_kek_version(managed: Any, dekstore: DekStore, shardkeys: ShardKeyStore | None = None) -> dict[str, int]:
    """DEKs per KEK version (normalised versioned id) of either kind of key, without a scan: the counters (a read per
    shard) and, for a shard-keys key, its shard keys (shards x generations rows), so a DEK under a shard key counts
    on the version that wraps its shard key. CmkError when either cannot be read (callers block or say so)."""
    shard_keys: list[ShardKey] = []
    if shardkeys is not None and any(c.kind is ConsumerKind.DEK_TABLE for c in getattr(managed, "consumers", ())):
        # Read for a flat key too: one migrating back to flat still has shard keys until its last shard moves.
        shard_keys = shardkeys.list_prefix(shard_prefix(managed))
    return count_by_version(dekstore.shard_counts(managed.ref), shard_keys)


def current_shard_key(
    managed: Any, shard: str, *, vault: KeyVault, shardkeys: ShardKeyStore, current: KeyVersion | None = None,
    now: datetime | None = None, cache: ShardKeyCache | None = None, store: DekStore | None = None,
) -> ShardKey:  # fmt: skip
    """The shard's newest generation; generation 1 is made (wrapped locally under the KEK's current version) when the
    shard has none. Two makers race safely: the insert conflicts and the loser reads the winner's. Given the DEK
    `store`, a shard found empty starts marked migrated (no flat DEK to page on a KEK rotation)."""
    existing = shardkeys.list_shard(shard)
    if existing:
        return existing[-1]
    current = current or vault.get_key(managed.ref)
    if not current.enabled:
        raise KeyDisabled(f"key {managed.ref.name}/{current.version}: the current version is disabled")
    empty = store is not None and not store.list_page(shard, None, 1).items
    try:
        made = new_shard_key(managed, shard, 1, vault=vault, kek_version=current.version, now=now, cache=cache,
                             migrated=empty, kek_created=current.created)  # fmt: skip
        return shardkeys.add(made)
    except Conflict:
        return shardkeys.list_shard(shard)[-1]


def new_shard_key(
    managed: Any, shard: str, generation: int, *, vault: KeyVault, kek_version: str, now: datetime | None = None,
    migrated: bool = False, cache: ShardKeyCache | None = None, kek_created: datetime | None = None,
) -> ShardKey:  # fmt: skip
    """A fresh AES-256 shard key wrapped (locally, with the public key) under `kek_version`; plaintext cleared once
    `cache` (when given) holds it, so its maker needs no unwrap to use it."""
    secret = new_secret()
    try:
        wrapped = vault.wrap_key(managed.ref, kek_version, bytes(secret))
        made = ShardKey(shard, generation, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, kcv(secret),
                        now or datetime.now(UTC), migrated, kek_created=kek_created)  # fmt: skip
        if cache is not None:
            cache.remember(made, secret, vault)
        return made
    finally:
        secret[:] = bytes(len(secret))


def seal_under(sk: ShardKey, secret: bytearray, managed: Any, record: WrappedDek, dek: bytearray) -> WrappedDek:
    """`record` re-sealed under shard key `sk` (whose plaintext is `secret`), the old copy kept as previous."""
    return dataclasses.replace(
        record,
        key_id=shard_key_id(managed.ref, sk.shard, sk.generation),
        algorithm=SHARD_WRAP_ALGORITHM,
        wrapped=wrap_dek(secret, sk.shard, record.dek_id, dek),
        previous_key_id=record.key_id,
        previous_wrapped=record.wrapped,
    )


def create_sharded_dek(
    managed: Any,
    *,
    vault: KeyVault,
    store: DekStore,
    shardkeys: ShardKeyStore,
    cache: ShardKeyCache | None = None,
    dek_id: str | None = None,
    current: KeyVersion | None = None,
) -> DekHandle:
    """A new DEK of a shard-keys key, stored and returned open. Key Vault is called only to unwrap its shard key when
    the cache does not hold it (and to read the KEK's current version the first time a shard needs a key)."""
    cache = cache or _default_cache
    dek_id = dek_id or uuid.uuid4().hex
    options = dek_table_of(managed)
    shard = shard_of(dek_id, shard_prefix(managed), shard_count(options))
    sk = current_shard_key(managed, shard, vault=vault, shardkeys=shardkeys, current=current, cache=cache, store=store)
    secret = cache.secret(sk, vault)
    dek = new_secret()
    try:
        sealed = wrap_dek(secret, shard, dek_id, dek)
        key_id = shard_key_id(managed.ref, shard, sk.generation)
        record = store.add(WrappedDek(shard, dek_id, key_id, SHARD_WRAP_ALGORITHM, sealed, key_check_value(dek)))
        record = _still_backed(record, managed, dek, vault=vault, store=store, shardkeys=shardkeys, cache=cache)
        return DekHandle(record, dek)
    finally:
        dek[:] = bytes(len(dek))
        secret[:] = bytes(len(secret))


def _still_backed(record, managed, dek: bytearray, *, vault, store, shardkeys, cache) -> WrappedDek:
    """A shard-key rotation or a migration to flat may have finished (and deleted the generation this DEK used)
    between our read of the shard key and our insert: then the DEK is re-sealed under what the shard has now (its
    newest generation, or the KEK directly when it has none), so no stored DEK names a deleted shard key."""
    try:
        shardkeys.get(record.partition, generation_of(record.key_id))
        return record
    except NotFound:
        pass
    newest = shardkeys.list_shard(record.partition)
    if newest:
        secret = cache.secret(newest[-1], vault)
        try:
            return store.replace(seal_under(newest[-1], secret, managed, record, dek))
        finally:
            secret[:] = bytes(len(secret))
    current = vault.get_key(managed.ref)
    wrapped = vault.wrap_key(managed.ref, current.version, bytes(dek))
    flat = dataclasses.replace(record, key_id=wrapped.key_id, algorithm=wrapped.algorithm, wrapped=wrapped.wrapped)
    return store.replace(flat)


def open_record(
    record: WrappedDek, *, vault: KeyVault, shardkeys: ShardKeyStore | None = None, cache: ShardKeyCache | None = None
) -> DekHandle:
    """`record` opened and KCV-checked, whichever way it is wrapped: flat (one unwrapKey) or under its shard key
    (its shard key from the cache, or one unwrapKey as the caller, then a local unwrap)."""
    if not is_shard_wrapped(record.algorithm):
        return unwrap_checked(record, vault=vault)
    if shardkeys is None:
        raise InvalidInput("shardkeys", f"DEK {record.partition}/{record.dek_id} is under a shard key: pass the store")
    sk = shardkeys.get(record.partition, generation_of(record.key_id))
    secret = (cache or _default_cache).secret(sk, vault)
    try:
        dek = unwrap_dek(secret, record.partition, record.dek_id, record.wrapped)
    finally:
        secret[:] = bytes(len(secret))
    try:
        if len(dek) != DEK_BYTES or not hmac.compare_digest(key_check_value(dek), record.kcv):
            raise KcvMismatch(f"DEK {record.partition}/{record.dek_id}: the unwrapped value does not match its KCV")
        return DekHandle(record, dek)
    finally:
        dek[:] = bytes(len(dek))


def open_any(
    partition: str, dek_id: str, *, vault: KeyVault, store: DekStore, shardkeys: ShardKeyStore | None = None,
    cache: ShardKeyCache | None = None,
) -> DekHandle:  # fmt: skip
    """The stored DEK, opened as `open_record` opens it. A shard-key rotation may move the DEK and delete the
    generation between our read of the row and of its shard key: then the row is read once more."""
    record = store.get(partition, dek_id)
    try:
        return open_record(record, vault=vault, shardkeys=shardkeys, cache=cache)
    except NotFound:
        if not is_shard_wrapped(record.algorithm):
            raise
        return open_record(store.get(partition, dek_id), vault=vault, shardkeys=shardkeys, cache=cache)
