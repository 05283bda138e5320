"""The re-wrap of a shard that has shard keys: its shard keys move to the target, its DEKs do not.

A re-wrap message names a shard; for a `hierarchy: shard-keys` key (or a shard half-way through a migration) the
worker first re-wraps that shard's shard keys here: one unwrapKey per generation not yet on the target, inside the
same vault budget as DEK re-wraps, and nothing else. A shard marked migrated (every DEK under a shard key) is then
done: its DEK rows are not even read. A shard not marked migrated still has flat DEKs, which the flat page re-wraps
as before (the shard-wrapped ones among them are skipped: they depend on no KEK version directly).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.rewrap.messages import ROTATE_SHARD_KEY, RewrapMessage
from shared.envelope import (
    ShardChange,
    ShardKeyCache,
    dek_table_of,
    kek_versions_of,
    rewrap_shard_keys,
    rotate_shard_key,
    shard_count,
    shard_prefix,
    version_of,
)
from shared.errors import CmkError, ServiceUnavailable, Throttled
from shared.model import KeyVersion, same_key_id
from shared.ports import Clock, RewrapBudget, ShardKeyStore, WorkQueue
from shared.rotation_policy import duration_to_timedelta

TRANSIENT = (Throttled, ServiceUnavailable)
RETRY_DELAY_SECONDS = 10
# A shard-key rotation under way whose newest generation is older than this was interrupted: the sweep resumes it.
ROTATION_STALL_AFTER = timedelta(minutes=10)
ROTATION_CACHE_SECONDS = 60  # the worker's own unwraps during one shard's rotation


@dataclass(frozen=True)
class ShardStep:
    """What the shard-key step did for one message: `migrated` (skip the DEK pages), `deferred` (re-sent later)."""

    rows: int = 0
    rewrapped: int = 0
    vault_calls: int = 0
    migrated: bool = False
    deferred: bool = False
    refused: str | None = None  # the error code of a refusal no retry fixes (alerted by the caller)


def rewrap_shard_step(
    managed: Any,
    msg: RewrapMessage,
    current: KeyVersion,
    *,
    vault: Any,
    shardkeys: ShardKeyStore,
    budget: RewrapBudget,
    rewrap_queue: WorkQueue,
    clock: Clock,
    limit_per_window: int,
    window: Any,
    rows: list | None = None,
    moves: Callable[[Any], bool] | None = None,
) -> ShardStep:
    """`rows` when the caller already listed the shard; `moves` when only some rows may move (see
    `older_than_target`): the others count as done for this message."""
    rows = shardkeys.list_shard(msg.partition) if rows is None else rows
    if not rows:
        return ShardStep()
    behind = [r for r in rows if not same_key_id(r.kek_id, current.key_id) and (moves is None or moves(r))]
    migrated = all(r.migrated for r in rows)
    if behind:
        grant = budget.reserve(
            managed.ref.vault_host, len(behind), now=clock.now(), limit_per_window=limit_per_window, window=window
        )
        if grant.granted < len(behind):
            # Too few operations for this shard now: the whole message comes back when the next window opens (the
            # few granted go unspent rather than splitting a shard's rows over two messages).
            rewrap_queue.send(msg.to_json(), delay_seconds=max(1, math.ceil(grant.retry_after or 1)))
            return ShardStep(len(rows), deferred=True)
        try:
            done = rewrap_shard_keys(managed, msg.partition, current, vault=vault, shardkeys=shardkeys, moves=moves)
        except TRANSIENT:
            rewrap_queue.send(msg.to_json(), delay_seconds=RETRY_DELAY_SECONDS)
            return ShardStep(len(rows), deferred=True)
        except CmkError as exc:
            return ShardStep(len(rows), migrated=False, refused=exc.code)
        return ShardStep(len(rows), done.rewrapped, done.vault_calls, migrated)
    return ShardStep(len(rows), migrated=migrated)


OLDER, NEWER, UNKNOWN = "older", "newer", "unknown"


def kek_order(managed: Any, target: KeyVersion, *, vault: Any) -> Callable[[Any], str]:
    """Where a shard-key row's KEK version stands against `target`: OLDER (it may move), NEWER (this message is
    late: the next rotation overtook it) or UNKNOWN (same creation time, or unreadable). Decided from the row's
    `kek_created` (or, for a row written before that field, that version read once per process through the vault's
    cache), so "never backwards" needs no read of the key's current version. A row on the target itself: OLDER
    (the caller skips it anyway)."""

    def order(row: Any) -> str:
        if same_key_id(row.kek_id, target.key_id):
            return OLDER
        created = row.kek_created
        if created is None:
            try:
                created = version_of(vault, managed.ref, row.kek_version).created
            except CmkError:
                return UNKNOWN
        if created is None or target.created is None or created == target.created:
            return UNKNOWN
        return OLDER if created < target.created else NEWER

    return order


def shard_keys_behind(managed: Any, target: str, shardkeys: ShardKeyStore | None) -> int:
    """How many of the key's shard keys are on another KEK version than `target` (one query; 0 without a store)."""
    return shard_key_state(managed, target, shardkeys)[0]


def shards_with_keys_behind(managed: Any, target: str, shardkeys: ShardKeyStore | None) -> list[str]:
    """The shards holding a shard key on another KEK version than `target` (one query): the ones the sweep's
    targeted resume sends a page for, whose first step re-wraps that shard key."""
    if shardkeys is None:
        return []
    try:
        prefix = shard_prefix(managed)
    except CmkError:
        return []  # no dek-table consumer: no shard keys
    return sorted({row.shard for row in shardkeys.list_prefix(prefix) if not same_key_id(row.kek_id, target)})


def shard_key_state(managed: Any, target: str, shardkeys: ShardKeyStore | None) -> tuple[int, bool]:
    """(shard keys not on `target`, whether every shard of the key is migrated), from one query of its shard keys.
    Every shard migrated means no flat DEK can exist: the caller need not count DEK rows at all."""
    if shardkeys is None:
        return 0, False
    try:
        prefix = shard_prefix(managed)
        shards = shard_count(dek_table_of(managed))
    except CmkError:
        return 0, False  # no dek-table consumer: no shard keys
    rows = shardkeys.list_prefix(prefix)
    counts = kek_versions_of(rows)
    behind = sum(n for kek_id, n in counts.items() if not same_key_id(kek_id, target))
    by_shard: dict[str, bool] = {}
    for row in rows:
        by_shard[row.shard] = by_shard.get(row.shard, True) and row.migrated
    return behind, len(by_shard) == shards and all(by_shard.values())


def step_detail(step: ShardStep) -> dict:
    return {f"shard_keys_{k}": v for k, v in dataclasses.asdict(step).items() if v}


def rotation_interval(managed: Any) -> timedelta | None:
    """The dek-table's `shard_key_rotate_after` (validated by the inventory), None when shard keys rotate on request
    only."""
    try:
        text = dek_table_of(managed).get("shard_key_rotate_after")
    except CmkError:
        return None
    try:
        return duration_to_timedelta(text) if isinstance(text, str) else None
    except ValueError:
        return None


def shard_rotation_due(generations: list, every: timedelta | None, now: datetime) -> bool:
    """Decided from what is stored: a rotation under way (two generations) whose newest is older than the stall
    time, or one generation older than `every`. A duplicate message therefore never rotates twice."""
    if not generations:
        return False
    newest = generations[-1]
    if newest.created is None:
        return len(generations) > 1 or every is not None
    age = now - newest.created
    if len(generations) > 1:
        return age >= ROTATION_STALL_AFTER
    return every is not None and age >= every


def schedule_shard_rotations(
    managed: Any, current: KeyVersion, *, shardkeys: ShardKeyStore | None, queue: WorkQueue, clock: Clock
) -> int:
    """The sweep's part: one `rotate-shard-key` message per shard that is due (one query of the key's shard keys)."""
    every = rotation_interval(managed)
    if shardkeys is None or every is None:
        return 0
    by_shard: dict[str, list] = {}
    for row in shardkeys.list_prefix(shard_prefix(managed)):
        by_shard.setdefault(row.shard, []).append(row)
    now, sent = clock.now(), 0
    for shard, generations in sorted(by_shard.items()):
        if shard_rotation_due(generations, every, now):
            message = RewrapMessage(managed.name, current.key_id, shard, started_at=now, action=ROTATE_SHARD_KEY)
            queue.send(message.to_json())
            sent += 1
    return sent


def rotate_shard_step(
    managed: Any, msg: RewrapMessage, *, vault: Any, dekstore: Any, shardkeys: ShardKeyStore | None, clock: Clock
) -> ShardChange | None:
    """The worker's part: rotate the message's shard if it is still due (else None: a duplicate or a late one)."""
    if shardkeys is None:
        return None
    if not shard_rotation_due(shardkeys.list_shard(msg.partition), rotation_interval(managed), clock.now()):
        return None
    cache = ShardKeyCache(ROTATION_CACHE_SECONDS)
    try:
        return rotate_shard_key(managed, msg.partition, vault=vault, store=dekstore, shardkeys=shardkeys, cache=cache,
                                now=clock.now())  # fmt: skip
    finally:
        cache.clear()
