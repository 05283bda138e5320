"""The `cmk-move` worker: moves one consumer to its key's current version, as the long-running operation it is.

ARM's PATCH of a MySQL flexible server's (or a disk encryption set's) key takes minutes, so nothing waits for it:
- start: decide from state. Already on the current version -> done; following the latest version itself -> the
  sweep watches it. Otherwise take the claim `move|{resource}|{current version}` (one insert, whoever wins) BEFORE
  sending the PATCH, so duplicates (a redelivered event, the sweep) converge and exactly one PATCH is sent; start it
  without waiting and queue a delayed follow-up. The target is always the key's current version when the worker
  runs, never the one an older message named: nothing moves backwards.
- follow: one read of the operation. In progress (or ARM refused the start with 409 because another operation is
  running) -> queued again, until GIVE_UP_AFTER on the app's clock; succeeded -> the consumer must report the version
  and be available: audited `moved`, claim completed (and if the key moved on meanwhile, a new move is decided);
  failed -> audited `failed`, one `CmkGuardian.Consumer.NotMoved` alert, claim released so the sweep can retry.
A move is one action, so one audit record, at its end (moved, failed or gave up); its start and each look in between
are log lines (the worker's outcome), and the end is also a `CmkGuardian.ConsumerMoved` event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from functions.consumers.move_messages import MoveMessage, parse_move_message
from shared.audit import AuditRecord
from shared.coordination.claims import Claim, ClaimStatus
from shared.errors import (
    CmkError,
    MalformedMessage,
    OperationInProgress,
    PreconditionFailed,
    ServiceUnavailable,
    Throttled,
)
from shared.inventory.model import UnknownKey
from shared.model import Alert, ConsumerKind, Severity, same_key_id
from shared.ports import Alerts, AuditTrail, Claims, Clock, Consumers, KeyVault, WorkQueue
from shared.telemetry import NO_TELEMETRY, Telemetry, names

CONSUMER_ALERT = "CmkGuardian.Consumer.NotMoved"
# How long a started move is followed (app's clock) before it is given up and alerted on, and how long its claim
# holds: longer, so a crashed follower's claim outlasts any operation it may have left running.
GIVE_UP_AFTER = timedelta(hours=2)
CLAIM_TTL = timedelta(hours=3)
TRANSIENT = (Throttled, ServiceUnavailable)


@dataclass(frozen=True)
class MoveResult:
    key: str
    resource_id: str
    action: str  # already-there, following, in-flight, started, in-progress, moved, failed, gave-up, superseded
    target: str | None = None
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "resource_id": self.resource_id, "action": self.action, "target": self.target,
                **self.detail}  # fmt: skip


def move_claim_id(resource_id: str, version: str) -> str:
    return f"move|{resource_id.strip().lower()}|{version.lower()}"


def decide_move(managed: Any, consumer: Any, *, trigger: str) -> MoveMessage:
    """The message that moves `consumer` of `managed` (the worker picks the target when it runs)."""
    name = f"{managed.vault.name}/{managed.name}"  # vault/key: exactly one key even when two vaults share a name
    return MoveMessage(name, consumer.kind.value, consumer.resource_id, uuid.uuid4().hex, trigger[:200])


def move_consumer(
    message: object,
    *,
    inventory: Any,
    vault: KeyVault,
    consumers: Consumers,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    move_queue: WorkQueue,
    follow_up_delay: int,
    telemetry: Telemetry = NO_TELEMETRY,
) -> MoveResult:
    msg = parse_move_message(message)
    managed, consumer = _consumer_of(inventory, msg)
    ports = _Ports(vault, consumers, claims, audit, alerts, clock, move_queue, follow_up_delay, telemetry)
    try:
        current = vault.get_key(managed.ref)
        if msg.phase == "start":
            return _start(msg, managed, consumer, current, ports)
        return _follow(msg, managed, consumer, current, ports)
    except TRANSIENT as exc:
        # ARM or Key Vault briefly unavailable: the move looks again after the follow-up delay, holding whatever
        # claim it holds, rather than spending the host's few quick retries and ending poisoned with a high alert.
        # Past the deadline it raises after all: the host's retries, then the poison alert, have the last word.
        started = msg.started_at or clock.now()
        if clock.now() - started > GIVE_UP_AFTER:
            raise
        move_queue.send(replace(msg, started_at=started).to_json(), delay_seconds=follow_up_delay)
        return MoveResult(managed.name, msg.resource_id, "retry-later", msg.target or "", {"error": exc.code})


@dataclass(frozen=True)
class _Ports:
    vault: KeyVault
    consumers: Consumers
    claims: Claims
    audit: AuditTrail
    alerts: Alerts
    clock: Clock
    queue: WorkQueue
    delay: int
    telemetry: Telemetry = NO_TELEMETRY


def _consumer_of(inventory: Any, msg: MoveMessage) -> tuple[Any, Any]:
    try:
        managed = inventory.key(msg.key)
    except UnknownKey:
        raise MalformedMessage("key", "not a managed key (no longer in the inventory?)") from None
    for consumer in managed.consumers:
        if consumer.kind != ConsumerKind.DEK_TABLE and (consumer.resource_id or "").lower() == msg.resource_id.lower():
            if consumer.kind.value != msg.kind:
                raise MalformedMessage("kind", f"the inventory names {msg.resource_id} a {consumer.kind.value}")
            return managed, consumer
    raise MalformedMessage("resource_id", f"not a consumer of {managed.name} in the inventory")


def _on(state: Any, key_id: str) -> bool:
    return same_key_id(state.key_url, key_id)


def _start(msg: MoveMessage, managed, consumer, current, p: _Ports) -> MoveResult:
    kind, rid = msg.kind, msg.resource_id
    state = p.consumers.get_state(kind, rid)
    if _on(state, current.key_id):
        return MoveResult(managed.name, rid, "already-there", current.key_id, {"available": state.available})
    if state.follows_latest:
        return MoveResult(managed.name, rid, "following", current.key_id, {"key_url": state.key_url})
    claim_id = move_claim_id(rid, current.version)
    taken = p.claims.claim(claim_id, msg.move_id, now=p.clock.now(), ttl=CLAIM_TTL)
    if not taken.taken:
        done = taken.claim.status is ClaimStatus.COMPLETED
        return MoveResult(managed.name, rid, "already-moved" if done else "in-flight", current.key_id)
    return _send(msg, managed, consumer, current.key_id, taken.claim, p, started_at=p.clock.now())


def _send(msg: MoveMessage, managed, consumer, target: str, claim: Claim, p: _Ports, *, started_at) -> MoveResult:
    """The one PATCH, under the claim; its follow-up queued before this returns."""
    kind, rid = msg.kind, msg.resource_id
    try:
        started = p.consumers.start_move(kind, rid, target)
    except (OperationInProgress, *TRANSIENT) as busy:
        # Another operation runs on the resource (perhaps this move's own PATCH, sent before a crash), or ARM is
        # briefly unavailable: in progress, not a failure. The follow-up, holding the claim, looks again and sends
        # the PATCH once the way is free; only a way still blocked past the deadline is given up on (a clock that
        # jumped is no reason while the way is free).
        if _overdue(msg, p):
            return _gave_up(msg, managed, consumer, target, claim, p)
        p.queue.send(msg.following(target, None, msg.started_at or started_at).to_json(), delay_seconds=p.delay)
        return MoveResult(managed.name, rid, "in-progress", target, {"busy": busy.code})
    except CmkError as exc:
        return _failed(msg, managed, consumer, target, claim, p, f"{exc.code}: {exc}")
    # The deadline of a running operation counts from its own PATCH, not from a wait for the resource before it.
    sent_at = p.clock.now()
    p.queue.send(msg.following(target, started.operation_url, sent_at).to_json(), delay_seconds=p.delay)
    return MoveResult(managed.name, rid, "started", target, {"operation_url": started.operation_url})


def _follow(msg: MoveMessage, managed, consumer, current, p: _Ports) -> MoveResult:
    kind, rid, target = msg.kind, msg.resource_id, msg.target or current.key_id
    claim = p.claims.get(move_claim_id(rid, target.rstrip("/").rsplit("/", 1)[-1]))
    if claim is None or claim.owner != msg.move_id or claim.status is not ClaimStatus.IN_PROGRESS:
        # Released after a failure, completed, or taken over after expiry: this follow-up is no longer the move's.
        return MoveResult(managed.name, rid, "superseded", target, {"claim": claim.status.value if claim else None})
    if msg.operation_url is None:
        state = p.consumers.get_state(kind, rid)
        if _on(state, target):
            return _succeeded(msg, managed, consumer, current, target, claim, p, state)
        return _send(msg, managed, consumer, target, claim, p, started_at=msg.started_at)
    status = p.consumers.move_status(kind, rid, msg.operation_url)
    if status.status == "InProgress":
        if _overdue(msg, p):
            return _gave_up(msg, managed, consumer, target, claim, p)
        p.queue.send(msg.to_json(), delay_seconds=p.delay)
        return MoveResult(managed.name, rid, "in-progress", target)
    if status.status == "Failed":
        return _failed(msg, managed, consumer, target, claim, p, status.error or "the operation failed")
    return _succeeded(msg, managed, consumer, current, target, claim, p, p.consumers.get_state(kind, rid))


def _overdue(msg: MoveMessage, p: _Ports) -> bool:
    return msg.started_at is not None and p.clock.now() - msg.started_at > GIVE_UP_AFTER


def _succeeded(msg, managed, consumer, current, target: str, claim: Claim, p: _Ports, state) -> MoveResult:
    rid = msg.resource_id
    if not _on(state, target) or not state.available:
        why = f"reports key {state.key_url}, available={state.available}" + (f": {state.error}" if state.error else "")
        return _failed(msg, managed, consumer, target, claim, p, why)
    try:
        p.claims.complete(claim, {"moved_to": target})
    except PreconditionFailed:
        return MoveResult(managed.name, rid, "superseded", target)
    _record(p, msg, managed, "moved", target, {"key_url": state.key_url})
    detail: dict[str, Any] = {"key_url": state.key_url}
    if not same_key_id(target, current.key_id):
        # The key moved on while this PATCH ran: a new move to the current version (never back to an older one).
        p.queue.send(decide_move(managed, consumer, trigger=msg.trigger).to_json())
        detail["next"] = current.key_id
    return MoveResult(managed.name, rid, "moved", target, detail)


def _failed(msg, managed, consumer, target: str, claim: Claim, p: _Ports, why: str) -> MoveResult:
    """Recorded, alerted once (only the claim's holder gets here), then released so the sweep can try again."""
    record_id = _record(p, msg, managed, "failed", target, {"reason": why[:500]})
    p.alerts.publish(not_moved_alert(managed, consumer, target, why, audit_id=record_id))
    p.claims.release(claim)
    return MoveResult(managed.name, msg.resource_id, "failed", target, {"reason": why[:500]})


def _gave_up(msg, managed, consumer, target: str, claim: Claim, p: _Ports) -> MoveResult:
    result = _failed(msg, managed, consumer, target, claim, p, f"still in progress after {GIVE_UP_AFTER}")
    return MoveResult(result.key, result.resource_id, "gave-up", target, result.detail)


def _record(p: _Ports, msg: MoveMessage, managed, outcome: str, target: str, detail: dict) -> str:
    version = target.rstrip("/").rsplit("/", 1)[-1]
    p.telemetry.event(
        names.CONSUMER_MOVED, key=managed.name, version=version, consumer=_consumer_label(msg), outcome=outcome
    )
    return p.audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            p.clock.now(),
            "move-consumer",
            msg.trigger or "queue",
            managed.name,
            outcome,
            to_version=target.rstrip("/").rsplit("/", 1)[-1],
            detail={"kind": msg.kind, "resource_id": msg.resource_id, "move_id": msg.move_id, **detail},
        )
    ).record_id


def _consumer_label(msg: MoveMessage) -> str:
    """The consumer as a dimension: its kind and resource name (the resource id's last segment), not the full id."""
    return f"{msg.kind}/{msg.resource_id.rstrip('/').rsplit('/', 1)[-1]}"


def not_moved_alert(managed: Any, consumer: Any, target: str, why: str, *, audit_id: str | None = None) -> Alert:
    return Alert(
        CONSUMER_ALERT,
        consumer.resource_id,
        Severity.HIGH,
        f"{consumer.kind.value} {consumer.resource_id} did not move to {target}: {why}"[:1000],
        {
            "key": managed.name,
            "resource_id": consumer.resource_id,
            "target": target,
            "reason": why[:500],
            "audit_id": audit_id,
        },
    )


def alert_poisoned_move(message: object, *, alerts: Alerts) -> Alert:
    """A move message the host gave up on (`cmk-move-poison`): the consumer stays on its old, working version, but
    nobody follows its move any more. Its claim expires (CLAIM_TTL), and the sweep then decides the move again."""
    try:
        msg = parse_move_message(message)
        subject = msg.resource_id
        data = {"key": msg.key, "resource_id": msg.resource_id, "phase": msg.phase, "target": msg.target}
    except MalformedMessage as exc:
        subject, data = "/consumers/move/poison", {"malformed": exc.field}
    alert = Alert(
        CONSUMER_ALERT,
        subject,
        Severity.HIGH,
        "a consumer move failed on every attempt and was poisoned: the consumer stays on its current key version "
        "until the sweep decides the move again or an operator looks",
        data,
    )
    alerts.publish(alert)
    return alert
