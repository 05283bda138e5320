"""The sweep's care of what depends on each key: finish what events missed, then retire what nothing needs.

- DEKs still on an older version, with no re-wrap page recorded lately: the re-wrap is resumed (its pages are
  idempotent, so a duplicate costs reads only).
- A consumer not on the current version: a move is queued (functions.consumers.moves; a move already in flight holds
  its claim, so the queued one stops there). One that follows the latest version itself is given Azure's hour, then
  alerted on. The sweep never runs a long-running operation itself (review H6).
- Old versions: the retirement guard decides (functions.rotation.retirement); checked once per current version after
  `retire_after`, so a quiet sweep costs no extra Key Vault call.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.rewrap import schedule_shard_rotations, shard_keys_behind
from functions.rewrap.fan_out import CONSUMER_ALERT, FOLLOW_WINDOW, dek_partitions, enqueue_move
from functions.rewrap.messages import RewrapMessage
from functions.rotation.retirement import RetirementDecision, retire_unused_versions
from shared.errors import CmkError
from shared.model import Alert, ConsumerKind, Severity, same_key_id
from shared.ports import Alerts, AuditTrail, Claims, Clock, Consumers, DekStore, KeyVault, ShardKeyStore, WorkQueue

# A re-wrap with a page recorded this recently is in flight; older than this, the sweep resumes it.
STALL_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class DependentsOutcome:
    key: str
    resumed_shards: int = 0
    moved: tuple[str, ...] = ()
    retirements: tuple[RetirementDecision, ...] = field(default=())
    shard_key_rotations: int = 0  # shards whose scheduled shard-key rotation was queued


def tend_dependents(
    *,
    inventory: Any,
    vault: KeyVault,
    dekstore: DekStore,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    consumers: Consumers,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    shardkeys: ShardKeyStore | None = None,
) -> list[DependentsOutcome]:
    outcomes = []
    for managed in inventory.keys:
        try:
            current = vault.get_key(managed.ref)
        except CmkError:
            continue  # missing or unreadable: the compliance step reports it
        resumed = _resume_rewrap(
            managed, current, dekstore=dekstore, queue=rewrap_queue, audit=audit, clock=clock, shardkeys=shardkeys
        )
        moved = _move_stragglers(managed, current, queue=move_queue, consumers=consumers, alerts=alerts, clock=clock)
        retirements = _retire(
            managed, current, inventory=inventory, vault=vault, dekstore=dekstore, consumers=consumers,
            claims=claims, audit=audit, alerts=alerts, clock=clock, shardkeys=shardkeys,
        )  # fmt: skip
        rotations = 0
        with contextlib.suppress(CmkError):  # unreadable shard keys: the next sweep tries again
            rotations = schedule_shard_rotations(managed, current, shardkeys=shardkeys, queue=rewrap_queue, clock=clock)
        outcomes.append(DependentsOutcome(managed.name, resumed, tuple(moved), tuple(retirements), rotations))
    return outcomes


def _resume_rewrap(
    managed, current, *, dekstore: DekStore, queue: WorkQueue, audit: AuditTrail, clock: Clock, shardkeys=None
) -> int:
    tables = managed.consumers_of(ConsumerKind.DEK_TABLE)
    if not tables:
        return 0
    try:
        counts = dekstore.count_by_key_id(managed.ref)
    except CmkError:
        return 0
    behind = sum(n for key_id, n in counts.items() if not same_key_id(key_id, current.key_id))
    with contextlib.suppress(CmkError):  # a shard-keys key's re-wrap is its shard keys'
        behind += shard_keys_behind(managed, current.key_id, shardkeys)
    if not behind:
        return 0
    recent = audit.page(key=managed.name, since=clock.now() - STALL_AFTER, page_size=50).items
    if any(r.action == "rewrap-page" and (r.to_version or "") == current.version for r in recent):
        return 0  # in flight
    shards = 0
    for consumer in tables:
        for partition in dek_partitions(managed, consumer):
            queue.send(RewrapMessage(managed.name, current.key_id, partition, started_at=clock.now()).to_json())
            shards += 1
    return shards


def _move_stragglers(managed, current, *, queue: WorkQueue, consumers: Consumers, alerts: Alerts, clock: Clock):
    behind = []
    for consumer in managed.consumers:
        if consumer.kind == ConsumerKind.DEK_TABLE:
            continue
        try:
            state = consumers.get_state(consumer.kind.value, consumer.resource_id)
        except CmkError:
            continue
        if same_key_id(state.key_url, current.key_id):
            continue
        if state.follows_latest:
            if current.created and clock.now() - current.created > FOLLOW_WINDOW:
                alerts.publish(
                    Alert(
                        CONSUMER_ALERT,
                        consumer.resource_id,
                        Severity.HIGH,
                        f"{consumer.resource_id} follows the latest version but is still on {state.key_url} more "
                        f"than {FOLLOW_WINDOW} after {current.version} appeared",
                        {"key": managed.name, "resource_id": consumer.resource_id, "target": current.key_id},
                    )
                )
            continue
        enqueue_move(managed, consumer, trigger="timer", queue=queue)
        behind.append(consumer.resource_id)
    return behind


def _retire(
    managed, current, *, inventory, vault, dekstore, consumers, claims: Claims, audit, alerts, clock, shardkeys=None
):
    grace = managed.rotation.retire_after
    if grace is None or not current.created or clock.now() - current.created < grace.delta:
        return []
    done_id = f"retire-done|{managed.ref.vault_host}|{managed.name.lower()}|{current.version.lower()}"
    if claims.get(done_id) is not None:
        return []
    decisions = retire_unused_versions(
        managed, enforce=inventory.enforcing, vault=vault, dekstore=dekstore, consumers=consumers, audit=audit,
        alerts=alerts, clock=clock, shardkeys=shardkeys,
    )  # fmt: skip
    if inventory.enforcing and all(d.allowed for d in decisions):
        taken = claims.claim(done_id, uuid.uuid4().hex, now=clock.now(), ttl=timedelta(days=3650))
        if taken.taken:
            claims.complete(taken.claim, {"retired": [d.version for d in decisions]})
    return decisions
