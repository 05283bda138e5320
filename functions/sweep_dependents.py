"""The sweep's care of what depends on each key: finish what events missed, then retire what nothing needs.

- DEKs still on an older version, with no re-wrap record (started, refused) lately: the re-wrap is resumed (its
  pages are idempotent, so a duplicate costs reads only).
- A consumer not on the current version: a move is queued (functions.consumers.moves; a move already in flight holds
  its claim, so the queued one stops there). One that follows the latest version itself is given Azure's hour, then
  alerted on. The sweep never runs a long-running operation itself (review H6).
- A current version nobody announced (a Managed HSM sends no events; an imported version may arrive while Event Grid
  is down): when something still depends on an older version, the sweep does what the KeyNewVersionCreated handler
  does, under the same per-version claim, so whichever of the two comes first moves the dependents and the other
  does nothing. A version found with nothing behind is claimed too: its record says nothing was left to move, and
  later sweeps stop at that one read.
- Old versions: the retirement guard decides (functions.rotation.retirement); checked once per current version after
  `retire_after`, so a quiet sweep costs no extra Key Vault call.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.compliance import imported_version
from functions.rewrap import (
    ANNOUNCE_TTL,
    CONSUMER_ALERT,
    FOLLOW_WINDOW,
    announce_claim_id,
    dek_partitions,
    enqueue_move,
    move_dependents_once,
    schedule_shard_rotations,
    shard_keys_behind,
)
from functions.rewrap.messages import RewrapMessage
from functions.rewrap.worker import REWRAP_ACTION
from functions.rotation.retirement import RetirementDecision, retire_unused_versions
from shared.errors import CmkError
from shared.model import Alert, ConsumerKind, Severity, same_key_id
from shared.ports import Alerts, AuditTrail, Claims, Clock, Consumers, DekStore, KeyVault, ShardKeyStore, WorkQueue
from shared.telemetry import NO_TELEMETRY, Telemetry

# A re-wrap started this recently is in flight; older than this, the sweep resumes it.
STALL_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class DependentsOutcome:
    key: str
    resumed_shards: int = 0
    moved: tuple[str, ...] = ()
    retirements: tuple[RetirementDecision, ...] = field(default=())
    unannounced: str | None = None  # the current version, when this sweep found it unannounced and moved (or tried)
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
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> list[DependentsOutcome]:
    outcomes = []
    for managed in inventory.keys:
        try:
            current = vault.get_key(managed.ref)
        except CmkError:
            continue  # missing or unreadable: the compliance step reports it
        if managed.rotation.imported and not imported_version(current):
            # Not the customer's material (KeyVersionGenerated, critical): nothing is moved onto it, nothing retired
            # for it; a person decides.
            outcomes.append(DependentsOutcome(managed.name))
            continue
        announced = _announce_unannounced(
            managed, current, vault=vault, dekstore=dekstore, rewrap_queue=rewrap_queue, move_queue=move_queue,
            consumers=consumers, claims=claims, audit=audit, clock=clock, shardkeys=shardkeys,
        )  # fmt: skip
        if announced is not None:
            resumed, moved = announced
        else:
            resumed = _resume_rewrap(
                managed, current, dekstore=dekstore, queue=rewrap_queue, audit=audit, clock=clock, shardkeys=shardkeys
            )
            moved = _move_stragglers(
                managed, current, queue=move_queue, consumers=consumers, alerts=alerts, clock=clock
            )
        retirements = _retire(
            managed, current, inventory=inventory, vault=vault, dekstore=dekstore, consumers=consumers,
            claims=claims, audit=audit, alerts=alerts, clock=clock, telemetry=telemetry, shardkeys=shardkeys,
        )  # fmt: skip
        unannounced = current.version if announced is not None else None
        rotations = 0
        with contextlib.suppress(CmkError):  # unreadable shard keys: the next sweep tries again
            rotations = schedule_shard_rotations(managed, current, shardkeys=shardkeys, queue=rewrap_queue, clock=clock)
        outcomes.append(
            DependentsOutcome(managed.name, resumed, tuple(moved), tuple(retirements), unannounced, rotations)
        )
    return outcomes


def _announce_unannounced(
    managed,
    current,
    *,
    vault,
    dekstore,
    rewrap_queue,
    move_queue,
    consumers,
    claims: Claims,
    audit,
    clock,
    shardkeys=None,
) -> tuple[int, list[str]] | None:
    """(shards, consumers moved) when this sweep moved the dependents of a version nobody announced; None when it
    was announced (or being announced) already, or nothing is behind (then recorded as announced)."""
    claim_id = announce_claim_id(managed.ref.vault_host, managed.name, current.version)
    try:
        if claims.get(claim_id) is not None:
            return None  # the event (or an earlier sweep) has it: stragglers are the usual step's
        behind = _anything_behind(managed, current, dekstore=dekstore, consumers=consumers, shardkeys=shardkeys)
    except CmkError:
        return None  # unreadable now: the usual step, and the next sweep, try again
    if behind is None:
        return None  # cannot tell (a read failed): decide nothing from half a picture
    if not behind:
        taken = claims.claim(claim_id, uuid.uuid4().hex, now=clock.now(), ttl=ANNOUNCE_TTL)
        if taken.taken:
            claims.complete(taken.claim, {"nothing_behind": True})
        return None
    try:
        outcome = move_dependents_once(
            managed, trigger="timer:unannounced", vault=vault, dekstore=dekstore, rewrap_queue=rewrap_queue,
            move_queue=move_queue, claims=claims, audit=audit, clock=clock, current=current, shardkeys=shardkeys,
        )  # fmt: skip
    except CmkError:
        return (0, [])  # its claim released: the next sweep (or the event) moves them; the others' keys go on
    if outcome.already:
        return None
    shards = sum(int(s.detail.get("shards", 0)) for s in outcome.steps)
    moved = [s.target for s in outcome.steps if s.kind != ConsumerKind.DEK_TABLE.value]
    return shards, moved


def _anything_behind(managed, current, *, dekstore: DekStore, consumers: Consumers, shardkeys=None) -> bool | None:
    """Whether a DEK, a shard key or an Azure consumer of the key is on another version than `current`; None when
    unreadable."""
    try:
        if managed.consumers_of(ConsumerKind.DEK_TABLE):
            counts = dekstore.count_by_key_id(managed.ref)
            if any(n and not same_key_id(key_id, current.key_id) for key_id, n in counts.items()):
                return True
            if shard_keys_behind(managed, current.key_id, shardkeys):
                return True
        for consumer in managed.consumers:
            if consumer.kind == ConsumerKind.DEK_TABLE:
                continue
            state = consumers.get_state(consumer.kind.value, consumer.resource_id)
            if not same_key_id(state.key_url, current.key_id) and not state.follows_latest:
                return True
    except CmkError:
        return None
    return False


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
    if any(r.action == REWRAP_ACTION and (r.to_version or "") == current.version for r in recent):
        return 0  # started (or refused a DEK) lately: in flight
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
    managed,
    current,
    *,
    inventory,
    vault,
    dekstore,
    consumers,
    claims: Claims,
    audit,
    alerts,
    clock,
    telemetry,
    shardkeys=None,
):
    grace = managed.rotation.retire_after
    if grace is None or not current.created or clock.now() - current.created < grace.delta:
        return []
    done_id = f"retire-done|{managed.ref.vault_host}|{managed.name.lower()}|{current.version.lower()}"
    if claims.get(done_id) is not None:
        return []
    decisions = retire_unused_versions(
        managed, enforce=inventory.enforcing, vault=vault, dekstore=dekstore, consumers=consumers, audit=audit,
        alerts=alerts, clock=clock, telemetry=telemetry, shardkeys=shardkeys,
    )  # fmt: skip
    if inventory.enforcing and all(d.allowed for d in decisions):
        taken = claims.claim(done_id, uuid.uuid4().hex, now=clock.now(), ttl=timedelta(days=3650))
        if taken.taken:
            claims.complete(taken.claim, {"retired": [d.version for d in decisions]})
    return decisions
