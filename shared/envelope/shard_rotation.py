"""What changes shard keys: a KEK re-wrap of them, a shard-key rotation, and migration between flat and shard keys.

Every step is crash-safe the way the flat re-wrap is: each stored row is replaced whole, ETag-guarded, only after
its new value was made from a KCV-checked plaintext; a re-run after a crash finds each row either done or as it was.
- KEK re-wrap (`rewrap_shard_keys`): each shard-key generation of the shard not on the target is unwrapped (one
  `unwrapKey`) and wrapped locally under the target (no call). No DEK row is read or written.
- Shard-key rotation (`rotate_shard_key`): a new generation (wrapped locally under the KEK version the shard is on),
  then the shard's DEKs are re-sealed under it in memory, and the older generations are deleted only after a full
  pass found no DEK left on them. At most one unwrapKey (the old shard key, when not cached); none per DEK.
- Migration (`migrate_shard`), one shard per call: to shard-keys, each flat DEK is unwrapped (a call, as a flat
  re-wrap does), checked and sealed under the shard key, and the shard is marked migrated once none is flat; to flat,
  the mark is cleared first (so the flat re-wrap pages the shard again), each DEK is opened through its shard key and
  wrapped under the KEK's current version, and the shard keys are deleted once no DEK uses them.
A DEK that fails its KCV or does not authenticate is refused: left as it was, named in the outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.envelope.deks import DecryptFailed, KcvMismatch
from shared.envelope.hierarchy import current_shard_key, new_shard_key, open_record, seal_under
from shared.envelope.shard_keys import (
    HIERARCHIES,
    HIERARCHY_SHARD_KEYS,
    ShardKeyCache,
    ShardKeyKcvMismatch,
    ShardUnwrapFailed,
    generation_of,
    is_shard_wrapped,
    unwrap_shard_key,
)
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, UnwrapFailed
from shared.model import KeyVersion, ShardKey, WrappedDek, same_key_id
from shared.ports import DekStore, KeyVault, ShardKeyStore

PAGE_SIZE = 200
REFUSALS = (KcvMismatch, ShardKeyKcvMismatch, ShardUnwrapFailed, DecryptFailed, UnwrapFailed)


@dataclass(frozen=True)
class ShardRewrap:
    shard: str
    rewrapped: int = 0
    skipped: int = 0
    vault_calls: int = 0  # unwrapKey calls made (wraps are local)


@dataclass(frozen=True)
class ShardChange:
    """A shard-key rotation's or a migration's outcome for one shard."""

    shard: str
    action: str  # "rotate" or "migrate-to-shard-keys" / "migrate-to-flat"
    moved: int = 0
    refused: tuple[str, ...] = ()  # DEK ids left as they were
    finished: bool = False
    generation: int | None = None  # the shard's generation afterwards (None: no shard key, flat)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "refused": list(self.refused)}


def rewrap_shard_keys(
    managed: Any, shard: str, target: KeyVersion, *, vault: KeyVault, shardkeys: ShardKeyStore,
    moves: Callable[[ShardKey], bool] | None = None,
) -> ShardRewrap:  # fmt: skip
    """Every generation of `shard` wrapped under `target`: one unwrapKey per generation not there yet, no DEK moved.
    `moves` (when given) says which rows may move at all: a late message's caller passes "on an older version than
    the target", decided again on every re-read, so a row on a newer version stays where it is.
    Errors (throttling, a refused unwrap, a KCV mismatch) propagate: the caller retries or alerts, nothing changed."""
    rewrapped = skipped = calls = 0
    for sk in shardkeys.list_shard(shard):
        for _attempt in range(3):
            if same_key_id(sk.kek_id, target.key_id) or (moves is not None and not moves(sk)):
                skipped += 1
                break
            secret = unwrap_shard_key(sk, vault)
            calls += 1
            try:
                wrapped = vault.wrap_key(managed.ref, target.version, bytes(secret))
            finally:
                secret[:] = bytes(len(secret))
            moved = dataclasses.replace(sk, kek_id=wrapped.key_id, algorithm=wrapped.algorithm, wrapped=wrapped.wrapped,
                                        kek_created=target.created)  # fmt: skip
            try:
                shardkeys.replace(moved)
                rewrapped += 1
                break
            except PreconditionFailed:
                try:
                    sk = shardkeys.get(shard, sk.generation)  # changed meanwhile: decide again from what is stored
                except NotFound:
                    break  # a finished shard-key rotation deleted it: nothing to re-wrap
            except NotFound:
                break
    return ShardRewrap(shard, rewrapped, skipped, calls)


def rotate_shard_key(
    managed: Any, shard: str, *, vault: KeyVault, store: DekStore, shardkeys: ShardKeyStore,
    cache: ShardKeyCache, now: datetime | None = None,
) -> ShardChange:  # fmt: skip
    """A new generation for `shard` and every DEK of the shard moved onto it locally. Re-run after a crash (or a
    refusal fixed) it resumes: a rotation under way (more than one generation) is finished, not started again."""
    generations = shardkeys.list_shard(shard)
    if not generations:
        raise InvalidInput("shard", f"{shard} has no shard key (not a shard-keys shard, or nothing created yet)")
    if len(generations) == 1:
        only = generations[0]
        made = new_shard_key(managed, shard, only.generation + 1, vault=vault, kek_version=only.kek_version, now=now,
                             migrated=only.migrated, cache=cache, kek_created=only.kek_created)  # fmt: skip
        with contextlib.suppress(Conflict):  # another rotation of this shard made it: carry on with theirs
            shardkeys.add(made)
        generations = shardkeys.list_shard(shard)
    newest, older = generations[-1], {g.generation for g in generations[:-1]}
    moved, refused = _reseal_shard(
        managed, shard, newest, lambda d: is_shard_wrapped(d.algorithm) and generation_of(d.key_id) in older,
        vault=vault, store=store, shardkeys=shardkeys, cache=cache,
    )  # fmt: skip
    if not refused:
        _delete(shardkeys, [g for g in shardkeys.list_shard(shard) if g.generation in older])
    return ShardChange(shard, "rotate", moved, tuple(refused), not refused, newest.generation)


def migrate_shard(
    managed: Any, shard: str, *, to: str, vault: KeyVault, store: DekStore, shardkeys: ShardKeyStore,
    cache: ShardKeyCache, now: datetime | None = None,
) -> ShardChange:  # fmt: skip
    """Move one shard's DEKs to `to` (`shard-keys` or `flat`), with the same KCV checks as a re-wrap."""
    if to not in HIERARCHIES:
        raise InvalidInput("to", f"must be one of {', '.join(HIERARCHIES)}")
    if to == HIERARCHY_SHARD_KEYS:
        sk = current_shard_key(managed, shard, vault=vault, shardkeys=shardkeys, now=now, cache=cache)
        moved, refused = _reseal_shard(
            managed, shard, sk, lambda d: not is_shard_wrapped(d.algorithm),
            vault=vault, store=store, shardkeys=shardkeys, cache=cache,
        )  # fmt: skip
        if not refused:
            for row in shardkeys.list_shard(shard):
                if not row.migrated:
                    _set_migrated(shardkeys, row, True)
        return ShardChange(shard, "migrate-to-shard-keys", moved, tuple(refused), not refused, sk.generation)
    for row in shardkeys.list_shard(shard):  # first: the flat re-wrap must page this shard again from now on
        if row.migrated:
            _set_migrated(shardkeys, row, False)
    current = vault.get_key(managed.ref)
    moved, refused = 0, []
    for dek in _shard_deks(store, shard):
        if not is_shard_wrapped(dek.algorithm):
            continue
        outcome = _move(dek, lambda r: _flat(managed, r, current, vault=vault, shardkeys=shardkeys, cache=cache),
                        store=store, wanted=lambda r: is_shard_wrapped(r.algorithm))  # fmt: skip
        moved += outcome == "moved"
        if outcome == "refused":
            refused.append(dek.dek_id)
    if not refused:
        _delete(shardkeys, shardkeys.list_shard(shard))
    return ShardChange(shard, "migrate-to-flat", moved, tuple(refused), not refused, None)


def _flat(managed, record: WrappedDek, current: KeyVersion, *, vault, shardkeys, cache) -> WrappedDek:
    with open_record(record, vault=vault, shardkeys=shardkeys, cache=cache) as opened:
        wrapped = vault.wrap_key(managed.ref, current.version, bytes(opened._secret))
    return dataclasses.replace(
        record, key_id=wrapped.key_id, algorithm=wrapped.algorithm, wrapped=wrapped.wrapped,
        previous_key_id=record.key_id, previous_wrapped=record.wrapped,
    )  # fmt: skip


def _reseal_shard(managed, shard: str, target: ShardKey, wanted, *, vault, store, shardkeys, cache):
    """Every DEK of `shard` that `wanted` selects, opened (KCV-checked) and sealed under `target`."""
    secret = cache.secret(target, vault)
    try:

        def reseal(record: WrappedDek) -> WrappedDek:
            with open_record(record, vault=vault, shardkeys=shardkeys, cache=cache) as opened:
                return seal_under(target, secret, managed, record, opened._secret)

        moved, refused = 0, []
        for dek in _shard_deks(store, shard):
            if not wanted(dek):
                continue
            outcome = _move(dek, reseal, store=store, wanted=wanted)
            moved += outcome == "moved"
            if outcome == "refused":
                refused.append(dek.dek_id)
        return moved, refused
    finally:
        secret[:] = bytes(len(secret))


def _move(dek: WrappedDek, change, *, store: DekStore, wanted) -> str:
    """'moved', 'skipped' (someone else moved or deleted it) or 'refused' (left as it was)."""
    for _attempt in range(3):
        try:
            store.replace(change(dek))
            return "moved"
        except REFUSALS:
            return "refused"
        except PreconditionFailed:
            try:
                dek = store.get(dek.partition, dek.dek_id)
            except NotFound:
                return "skipped"
            if not wanted(dek):
                return "skipped"
        except NotFound:
            return "skipped"
    return "refused"


def _shard_deks(store: DekStore, shard: str):
    continuation = None
    while True:
        page = store.list_page(shard, continuation, PAGE_SIZE)
        yield from page.items
        continuation = page.continuation
        if not continuation:
            return


def _set_migrated(shardkeys: ShardKeyStore, row: ShardKey, value: bool) -> None:
    for _attempt in range(3):
        try:
            shardkeys.replace(dataclasses.replace(row, migrated=value))
            return
        except PreconditionFailed:
            row = shardkeys.get(row.shard, row.generation)
            if row.migrated == value:
                return


def _delete(shardkeys: ShardKeyStore, rows: list[ShardKey]) -> None:
    for row in rows:
        try:
            shardkeys.delete(row)
        except PreconditionFailed:
            with contextlib.suppress(NotFound):  # re-wrapped meanwhile (still unused), or deleted by a twin run
                shardkeys.delete(shardkeys.get(row.shard, row.generation))
