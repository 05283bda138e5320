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
from dataclasses import dataclass
from typing import Any

from functions.rewrap.messages import RewrapMessage
from shared.envelope import dek_table_of, kek_versions_of, rewrap_shard_keys, shard_count, shard_prefix
from shared.errors import CmkError, ServiceUnavailable, Throttled
from shared.model import KeyVersion, same_key_id
from shared.ports import Clock, RewrapBudget, ShardKeyStore, WorkQueue

TRANSIENT = (Throttled, ServiceUnavailable)
RETRY_DELAY_SECONDS = 10


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
) -> ShardStep:
    rows = shardkeys.list_shard(msg.partition)
    if not rows:
        return ShardStep()
    behind = [r for r in rows if not same_key_id(r.kek_id, current.key_id)]
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
            done = rewrap_shard_keys(managed, msg.partition, current, vault=vault, shardkeys=shardkeys)
        except TRANSIENT:
            rewrap_queue.send(msg.to_json(), delay_seconds=RETRY_DELAY_SECONDS)
            return ShardStep(len(rows), deferred=True)
        except CmkError as exc:
            return ShardStep(len(rows), migrated=False, refused=exc.code)
        return ShardStep(len(rows), done.rewrapped, done.vault_calls, migrated)
    return ShardStep(len(rows), migrated=migrated)


def shard_keys_behind(managed: Any, target: str, shardkeys: ShardKeyStore | None) -> int:
    """How many of the key's shard keys are on another KEK version than `target` (one query; 0 without a store)."""
    return shard_key_state(managed, target, shardkeys)[0]


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
