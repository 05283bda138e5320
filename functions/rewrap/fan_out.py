"""A new key version protects nothing until its dependents move: fan the re-wrap out and queue the consumer moves.

On `KeyNewVersionCreated` (and from the sweep, for whatever an event missed), per consumer of the key:
- dek-table: one re-wrap message per shard of the key's DEKs (functions.rewrap.worker does the work), and one
  audit record, `rewrap` `started`, for the whole re-wrap (the pages log, they do not audit). When no DEK is behind
  the new version (a key whose registry is empty), nothing is enqueued: the record says `completed` with 0 DEKs and
  the re-wrap's completion claim is taken, so sixteen workers do not each read an empty shard, log and audit it;
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
from functions.rewrap.shard_keys import shard_key_state
from functions.rewrap.worker import REWRAP_ACTION, completion_claim_id
from shared.audit import AuditRecord
from shared.coordination.claims import ClaimStatus
from shared.envelope.sharding import all_shards, shard_count
from shared.errors import CmkError, PreconditionFailed
from shared.events import KeyNewVersionCreated
from shared.model import ConsumerKind, KeyVersion, same_key_id
from shared.ports import AuditTrail, Claims, Clock, DekStore, KeyVault, ShardKeyStore, WorkQueue
from shared.telemetry import NO_TELEMETRY, Telemetry, names

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
    dekstore: DekStore,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    claims: Claims,
    audit: AuditTrail,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> MoveOutcome:
    """Decide and enqueue, nothing more: answered in well under Event Grid's 30 s whatever ARM is doing. A version
    the sweep (or an earlier delivery) already announced is a no-op."""
    return move_dependents_once(
        event.key,
        trigger=f"event:{event.event_id}",
        vault=vault,
        dekstore=dekstore,
        rewrap_queue=rewrap_queue,
        move_queue=move_queue,
        claims=claims,
        audit=audit,
        clock=clock,
        telemetry=telemetry,
        shardkeys=shardkeys,
    )


def move_dependents_once(
    managed: Any,
    *,
    trigger: str,
    vault: KeyVault,
    dekstore: DekStore,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    claims: Claims,
    audit: AuditTrail,
    clock: Clock,
    current: KeyVersion | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
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
            managed, trigger=trigger, vault=vault, dekstore=dekstore, claims=claims, rewrap_queue=rewrap_queue,
            move_queue=move_queue, audit=audit, clock=clock, current=current, telemetry=telemetry, shardkeys=shardkeys,
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
    dekstore: DekStore,
    claims: Claims,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    audit: AuditTrail,
    clock: Clock,
    current: KeyVersion | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> MoveOutcome:
    current = current or vault.get_key(managed.ref)
    steps: list[ConsumerStep] = []
    for consumer in managed.consumers:
        if consumer.kind != ConsumerKind.DEK_TABLE and consumer.resource_id:
            steps.append(enqueue_move(managed, consumer, trigger=trigger, queue=move_queue))
    tables = managed.consumers_of(ConsumerKind.DEK_TABLE)
    if not tables:
        return MoveOutcome(managed.name, current.key_id, tuple(steps))
    behind = _behind(managed, current, dekstore, shardkeys)
    if behind == 0:
        prefixes = [t.options.get("partition_prefix") or managed.name for t in tables]
        steps += [ConsumerStep(ConsumerKind.DEK_TABLE.value, p, "nothing-behind", {"shards": 0}) for p in prefixes]
        taken = claims.claim(
            completion_claim_id(managed, current.version), uuid.uuid4().hex, now=clock.now(), ttl=timedelta(days=3650)
        )
        if not taken.taken:
            return MoveOutcome(managed.name, current.key_id, tuple(steps))  # its completion is on the record already
        claims.complete(taken.claim, {"deks": 0})
        record_id = _record(audit, clock, managed, trigger, current, "completed", steps, deks=0, shards=0)
        telemetry.event(
            names.REWRAP_COMPLETED, key=managed.name, version=current.version, processed=0, succeeded=0, failed=0,
            duration_seconds=0, outcome="nothing-behind",
        )  # fmt: skip
        return MoveOutcome(managed.name, current.key_id, tuple(steps), record_id)
    fanned = [_fan_out(managed, consumer, current, rewrap_queue, clock) for consumer in tables]
    steps += fanned
    shards = sum(int(s.detail.get("shards", 0)) for s in fanned)
    record_id = _record(audit, clock, managed, trigger, current, "started", steps, deks=behind, shards=shards)
    telemetry.event(names.REWRAP_STARTED, key=managed.name, version=current.version, shards=shards, outcome="started")
    return MoveOutcome(managed.name, current.key_id, tuple(steps), record_id)


def _behind(managed: Any, current: KeyVersion, dekstore: DekStore, shardkeys: ShardKeyStore | None) -> int | None:
    """DEKs and shard keys of the key on another version than `current`; None when the registry or the shard keys
    cannot be read (then the re-wrap fans out anyway: its pages are idempotent, a needless one costs reads only)."""
    try:
        behind, migrated = shard_key_state(managed, current.key_id, shardkeys)
        counts = {} if migrated else dekstore.count_by_key_id(managed.ref)
    except CmkError:
        return None
    return behind + sum(n for key_id, n in counts.items() if not same_key_id(key_id, current.key_id))


def _record(audit, clock, managed, trigger: str, current: KeyVersion, outcome: str, steps, *, deks, shards: int) -> str:
    """The re-wrap's one record at its start (its completion is the other): what it moves, and which consumer
    moves went out with it. Once per version: the announce claim (move_dependents_once) lets one caller here."""
    return audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            REWRAP_ACTION,
            trigger,
            managed.name,
            outcome,
            to_version=current.version,
            detail={
                "deks": deks,
                "shards": shards,
                "steps": [{"kind": s.kind, "target": s.target, "action": s.action} for s in steps],
            },
        )
    ).record_id


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
