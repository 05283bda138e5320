"""The outcomes of the re-wrap queue's shard-key messages, in the worker's terms (PageOutcome, its alerts, its
records): a shard whose shard keys were all the work (migrated: its DEK rows are not read), one deferred to the next
budget window, one whose shard-key unwrap was refused, and a scheduled shard-key rotation. functions.rewrap.worker
calls these; they live here to keep the worker one concept long."""

from __future__ import annotations

import dataclasses
from typing import Any

from functions.rewrap.shard_keys import (
    NEWER,
    OLDER,
    ShardStep,
    kek_order,
    rewrap_shard_step,
    rotate_shard_step,
    step_detail,
)
from functions.rewrap.worker import BUDGET_WINDOW, PageOutcome, _completion, _kcv_alert, _record, window_limit
from shared.envelope import version_of
from shared.errors import NotFound

ROTATE_ACTION = "rotate-shard-key"  # the audit action of a scheduled shard-key rotation


def migrated_shard(managed: Any, msg, rows: list, *, vault, dekstore, shardkeys, budget, rewrap_queue, claims,
                   audit, alerts, clock) -> PageOutcome | None:  # fmt: skip
    """A shard whose rows are all migrated shard keys, without reading the key's current version (issue 21: a
    rotation costs shards + O(1) Key Vault requests). The target's public key comes from the vault's per-process
    cache of versioned reads, which the fan-out's read of the current version filled. "Never backwards" is decided
    from state: a row on a version newer than the target means this message is late (the next rotation overtook
    it), so it moves nothing, exactly as a superseded flat page. None: not such a shard, or a row whose order
    against the target is unknown (the caller's usual path, which reads the current version)."""
    if not rows or not all(r.migrated for r in rows):
        return None
    try:
        target = version_of(vault, managed.ref, msg.target_version)
    except NotFound:
        return PageOutcome(managed.name, msg.partition, msg.target, superseded=True)
    order = kek_order(managed, target, vault=vault)
    seen = {order(r) for r in rows}
    if NEWER in seen:
        return PageOutcome(managed.name, msg.partition, msg.target, superseded=True)
    if seen != {OLDER}:
        return None  # a version created in the same second as the target, or unreadable: decided as before

    def moves(row) -> bool:
        return order(row) == OLDER

    step = rewrap_shard_step(
        managed, msg, target, vault=vault, shardkeys=shardkeys, budget=budget, rewrap_queue=rewrap_queue,
        clock=clock, limit_per_window=window_limit(), window=BUDGET_WINDOW, rows=rows, moves=moves,
    )  # fmt: skip
    return shard_only(managed, msg, step, dekstore=dekstore, shardkeys=shardkeys, claims=claims, audit=audit,
                      alerts=alerts, clock=clock)  # fmt: skip


def shard_only(managed: Any, msg, step: ShardStep, *, dekstore, shardkeys, claims, audit, alerts, clock) -> PageOutcome:
    outcome = PageOutcome(managed.name, msg.partition, msg.target, succeeded=step.rewrapped)
    outcome, sent = dataclasses.replace(outcome, deferred=int(step.deferred)), []
    if step.refused:
        # The shard key's unwrap was refused (disabled version, KCV): nothing changed; recorded and alerted as a DEK's.
        sent.append(_kcv_alert(managed, msg, f"shard-key:{msg.partition}"))
        outcome = dataclasses.replace(outcome, refused=(f"shard-key:{msg.partition}",))
        _record(audit, clock, managed, msg, "refused", {"partition": msg.partition, **step_detail(step)})
    elif step.migrated:
        done = _completion(
            managed, msg, dekstore=dekstore, claims=claims, audit=audit, clock=clock, shardkeys=shardkeys
        )
        if done is not None:
            sent.append(done)
            outcome = dataclasses.replace(outcome, completed=True)
    for alert in sent:
        alerts.publish(alert)
    return dataclasses.replace(outcome, alerts=tuple(sent))


def rotated(managed: Any, msg, *, vault, dekstore, shardkeys, audit, alerts, clock) -> PageOutcome:
    """A scheduled shard-key rotation of one shard (its DEKs re-sealed locally), recorded; a duplicate or a late
    message finds it not due any more and changes nothing."""
    change = rotate_shard_step(managed, msg, vault=vault, dekstore=dekstore, shardkeys=shardkeys, clock=clock)
    if change is None:
        return PageOutcome(managed.name, msg.partition, msg.target, skipped=1)
    outcome = PageOutcome(
        managed.name, msg.partition, msg.target, change.moved + len(change.refused), change.moved,
        refused=change.refused, completed=change.finished,
    )  # fmt: skip
    sent = tuple(_kcv_alert(managed, msg, dek_id) for dek_id in change.refused)
    for alert in sent:
        alerts.publish(alert)
    label = "rotated" if change.finished else "refused"
    _record(audit, clock, managed, msg, label, change.to_json(), action=ROTATE_ACTION)
    return dataclasses.replace(outcome, alerts=sent)
