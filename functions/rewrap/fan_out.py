"""A new key version protects nothing until its dependents move: fan the re-wrap out and queue the consumer moves.

On `KeyNewVersionCreated` (and from the sweep, for whatever an event missed), per consumer of the key:
- dek-table: one re-wrap message per shard of the key's DEKs (functions.rewrap.worker does the work);
- mysql-flexible-server, disk-encryption-set: one `cmk-move` message (functions.consumers.moves does the work). ARM's
  PATCH of a consumer's key takes minutes and Event Grid waits 30 s for an answer, so this handler only decides and
  enqueues: it reads the key's current version and sends messages, nothing else (review H6).
The target is always the key's current version, whatever version the event names: a late or duplicate event moves
nothing backwards (the move worker reads the current version again when it runs).

The event is not the only one to notice a new version: a Managed HSM sends no events, an imported version may arrive
while Event Grid is down, so the sweep moves dependents for a current version nobody announced
(functions.sweep_dependents). Both claim the version (`announce|{vault host}|{key}|{version}`) before they act, so
whichever comes first moves the dependents and the other is a no-op.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.compliance import imported_version
from functions.consumers.moves import CONSUMER_ALERT as CONSUMER_ALERT  # re-exported: the sweep alerts with it
from functions.consumers.moves import decide_move
from functions.rewrap.messages import RewrapMessage
from shared.audit import AuditRecord
from shared.coordination.claims import ClaimStatus
from shared.envelope.sharding import all_shards, shard_count
from shared.errors import PreconditionFailed
from shared.events import KeyNewVersionCreated
from shared.model import ConsumerKind, KeyVersion
from shared.ports import AuditTrail, Claims, Clock, KeyVault, WorkQueue

# Azure moves a DES that follows the latest version within about an hour.
FOLLOW_WINDOW = timedelta(hours=1)
# Deciding and enqueueing takes seconds: a holder silent this long crashed, and a redelivery or the sweep takes over.
ANNOUNCE_TTL = timedelta(minutes=10)


def announce_claim_id(vault_host: str, key_name: str, version: str) -> str:
    return f"announce|{vault_host.lower()}|{key_name.lower()}|{version.lower()}"


@dataclass(frozen=True)
class ConsumerStep:
    kind: str
    target: str  # resource id, or the DEK table's partition prefix
    action: str  # "enqueued" (re-wrap shards or a consumer move)
    detail: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class MoveOutcome:
    key: str
    target: str
    steps: tuple[ConsumerStep, ...]
    audit_id: str | None = None
    already: str | None = None  # a no-op: the version was "already moved" or is "being moved" by another

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": self.target,
            "audit_id": self.audit_id,
            "already": self.already,
            "steps": [{"kind": s.kind, "target": s.target, "action": s.action, **s.detail} for s in self.steps],
        }


def on_new_version(
    event: KeyNewVersionCreated,
    *,
    vault: KeyVault,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    claims: Claims,
    audit: AuditTrail,
    clock: Clock,
) -> MoveOutcome:
    """Decide and enqueue, nothing more: answered in well under Event Grid's 30 s whatever ARM is doing. A version
    the sweep (or an earlier delivery) already announced is a no-op."""
    return move_dependents_once(
        event.key,
        trigger=f"event:{event.event_id}",
        vault=vault,
        rewrap_queue=rewrap_queue,
        move_queue=move_queue,
        claims=claims,
        audit=audit,
        clock=clock,
    )


def move_dependents_once(
    managed: Any,
    *,
    trigger: str,
    vault: KeyVault,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    claims: Claims,
    audit: AuditTrail,
    clock: Clock,
    current: KeyVersion | None = None,
) -> MoveOutcome:
    """move_dependents under the current version's announce claim: once per version, whoever notices it first. A
    failure releases the claim, so the next delivery or sweep tries again at once."""
    current = current or vault.get_key(managed.ref)
    if managed.rotation.imported and not imported_version(current):
        # A version the vault generated on an imported key is not the customer's material: nothing moves onto it (the
        # sweep reports it, KeyVersionGenerated, critical). Not claimed: once a person fixes it, the sweep acts.
        return MoveOutcome(managed.name, current.key_id, (), None, already="not imported")
    claim_id = announce_claim_id(managed.ref.vault_host, managed.name, current.version)
    result = claims.claim(claim_id, uuid.uuid4().hex, now=clock.now(), ttl=ANNOUNCE_TTL)
    if not result.taken:
        held = result.claim
        done = "already moved" if held.status is ClaimStatus.COMPLETED else "being moved"
        return MoveOutcome(managed.name, current.key_id, (), held.outcome.get("audit_id"), already=done)
    try:
        outcome = move_dependents(
            managed, trigger=trigger, vault=vault, rewrap_queue=rewrap_queue, move_queue=move_queue, audit=audit,
            clock=clock, current=current,
        )  # fmt: skip
    except BaseException:
        claims.release(result.claim)
        raise
    with contextlib.suppress(PreconditionFailed):  # taken over after our expiry: the taker moves them again, harmless
        claims.complete(result.claim, {"audit_id": outcome.audit_id, "trigger": trigger[:200]})
    return outcome


def move_dependents(
    managed: Any,
    *,
    trigger: str,
    vault: KeyVault,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    audit: AuditTrail,
    clock: Clock,
    current: KeyVersion | None = None,
) -> MoveOutcome:
    current = current or vault.get_key(managed.ref)
    steps: list[ConsumerStep] = []
    for consumer in managed.consumers:
        if consumer.kind == ConsumerKind.DEK_TABLE:
            steps.append(_fan_out(managed, consumer, current, rewrap_queue, clock))
        elif consumer.resource_id:
            steps.append(enqueue_move(managed, consumer, trigger=trigger, queue=move_queue))
    record = audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            "move-dependents",
            trigger,
            managed.name,
            "enqueued",
            to_version=current.version,
            detail={"steps": [{"kind": s.kind, "target": s.target, "action": s.action} for s in steps]},
        )
    )
    return MoveOutcome(managed.name, current.key_id, tuple(steps), record.record_id)


def enqueue_move(managed: Any, consumer: Any, *, trigger: str, queue: WorkQueue) -> ConsumerStep:
    message = decide_move(managed, consumer, trigger=trigger)
    queue.send(message.to_json())
    return ConsumerStep(consumer.kind.value, consumer.resource_id, "enqueued", {"move_id": message.move_id})


def dek_partitions(managed: Any, consumer: Any) -> list[str]:
    """Every shard the key's DEKs may be in: known from the consumer's options, so no scan of the table."""
    prefix = consumer.options.get("partition_prefix") or managed.name
    return all_shards(prefix, shard_count(consumer.options))


def _fan_out(managed, consumer, current: KeyVersion, queue: WorkQueue, clock: Clock):
    partitions = dek_partitions(managed, consumer)
    for partition in partitions:
        queue.send(RewrapMessage(managed.name, current.key_id, partition, started_at=clock.now()).to_json())
    prefix = consumer.options.get("partition_prefix") or managed.name
    return ConsumerStep(consumer.kind.value, prefix, "enqueued", {"shards": len(partitions)})
