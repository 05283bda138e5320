"""A new key version protects nothing until its dependents move: fan the re-wrap out and move the consumers.

On `KeyNewVersionCreated` (and from the sweep, for whatever an event missed), per consumer of the key:
- dek-table: one re-wrap message per shard of the key's DEKs (functions.rewrap_worker does the work);
- mysql-flexible-server: point `primaryKeyURI` at the new versioned id (an ARM long-running PATCH), then verify the
  server reports it and is not Inaccessible;
- disk-encryption-set: when it follows the latest version itself, only verify (the sweep alerts when it has not
  moved within Azure's hour); otherwise point `activeKey.keyUrl` and verify.
The target is always the key's current version, whatever version the event names: a late or duplicate event moves
nothing backwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.rewrap_messages import RewrapMessage
from shared.audit import AuditRecord
from shared.dek_sharding import all_shards, shard_count
from shared.errors import CmkError, ServiceUnavailable, Throttled
from shared.events import KeyNewVersionCreated
from shared.model import Alert, ConsumerKind, KeyVersion, Severity, same_key_id
from shared.ports import Alerts, AuditTrail, Clock, Consumers, KeyVault, WorkQueue

CONSUMER_ALERT = "CmkGuardian.Consumer.NotMoved"
# Azure moves a DES that follows the latest version within about an hour.
FOLLOW_WINDOW = timedelta(hours=1)
TRANSIENT = (Throttled, ServiceUnavailable)


@dataclass(frozen=True)
class ConsumerStep:
    kind: str
    target: str  # resource id, or the DEK table's partition prefix
    action: str  # "enqueued", "moved", "already-there", "following", "not-moved", "failed"
    detail: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class MoveOutcome:
    key: str
    target: str
    steps: tuple[ConsumerStep, ...]
    audit_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": self.target,
            "audit_id": self.audit_id,
            "steps": [{"kind": s.kind, "target": s.target, "action": s.action, **s.detail} for s in self.steps],
        }


def on_new_version(
    event: KeyNewVersionCreated,
    *,
    vault: KeyVault,
    rewrap_queue: WorkQueue,
    consumers: Consumers,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
) -> MoveOutcome:
    outcome = move_dependents(
        event.key,
        trigger=f"event:{event.event_id}",
        vault=vault,
        rewrap_queue=rewrap_queue,
        consumers=consumers,
        audit=audit,
        alerts=alerts,
        clock=clock,
    )
    failed = [s for s in outcome.steps if s.action == "failed" and s.detail.get("transient")]
    if failed:
        raise ServiceUnavailable(f"{len(failed)} consumer step(s) failed transiently; Event Grid will redeliver")
    return outcome


def move_dependents(
    managed: Any,
    *,
    trigger: str,
    vault: KeyVault,
    rewrap_queue: WorkQueue,
    consumers: Consumers,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
) -> MoveOutcome:
    current = vault.get_key(managed.ref)
    steps: list[ConsumerStep] = []
    for consumer in managed.consumers:
        if consumer.kind == ConsumerKind.DEK_TABLE:
            steps.append(_fan_out(managed, consumer, current, rewrap_queue, clock))
        else:
            steps.append(_move_resource(managed, consumer, current, consumers, alerts, clock))
    record = audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            "move-dependents",
            trigger,
            managed.name,
            "failed" if any(s.action in ("failed", "not-moved") for s in steps) else "moved",
            to_version=current.version,
            detail={"steps": [{"kind": s.kind, "target": s.target, "action": s.action} for s in steps]},
        )
    )
    return MoveOutcome(managed.name, current.key_id, tuple(steps), record.record_id)


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


def _move_resource(managed, consumer, current: KeyVersion, consumers: Consumers, alerts: Alerts, clock: Clock):
    kind, rid = consumer.kind.value, consumer.resource_id
    try:
        state = consumers.get_state(kind, rid)
        if same_key_id(state.key_url, current.key_id):
            return ConsumerStep(kind, rid, "already-there", {"available": state.available})
        if state.follows_latest:
            return ConsumerStep(kind, rid, "following", {"key_url": state.key_url})
        state = consumers.point_to(kind, rid, current.key_id)
    except CmkError as exc:
        step = ConsumerStep(kind, rid, "failed", {"error": exc.code, "transient": isinstance(exc, TRANSIENT)})
        alerts.publish(_not_moved(managed, consumer, current, f"{exc.code}: {exc}"))
        return step
    if not same_key_id(state.key_url, current.key_id) or not state.available:
        why = f"reports key {state.key_url}, available={state.available}" + (f": {state.error}" if state.error else "")
        alerts.publish(_not_moved(managed, consumer, current, why))
        return ConsumerStep(kind, rid, "not-moved", {"key_url": state.key_url, "available": state.available})
    return ConsumerStep(kind, rid, "moved", {"key_url": state.key_url})


def _not_moved(managed: Any, consumer: Any, current: KeyVersion, why: str) -> Alert:
    return Alert(
        CONSUMER_ALERT,
        consumer.resource_id,
        Severity.HIGH,
        f"{consumer.kind.value} {consumer.resource_id} did not move to {managed.name}/{current.version}: {why}",
        {"key": managed.name, "resource_id": consumer.resource_id, "target": current.key_id, "reason": why},
    )
