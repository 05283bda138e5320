"""What every part of a revocation shares: its outcomes, alert names, how it audits and alerts, and the two reads
(key use at the key, an unwrap probe) that both execution and verification judge by."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.revocation.plan import GROUP_TYPES, RevocationPlan, key_use
from shared.alerts import publish_or_record
from shared.arm_ids import normalize_scope
from shared.audit import AuditRecord
from shared.envelope.sharding import all_shards, shard_count
from shared.errors import (
    CmkError,
    Forbidden,
    NotFound,
    UnknownReference,
)
from shared.inventory.model import UnknownKey
from shared.model import Alert, ConsumerKind, ConsumerState, RotationActionType, RotationPolicy, Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Clock,
    Consumers,
    DekStore,
    KeyVault,
    RoleDefinitions,
)
from shared.revocation import (
    Revocation,
)
from shared.roles.catalog import definitions_for

ACCESS_REVOKED_ALERT = "CmkGuardian.Revocation.AccessRevoked"
KEY_DISABLED_ALERT = "CmkGuardian.Revocation.KeyDisabled"
ACCESS_RESTORED_ALERT = "CmkGuardian.Revocation.AccessRestored"
VERIFIED_ALERT = "CmkGuardian.Revocation.Verified"
FAILED_ALERT = "CmkGuardian.Revocation.Failed"
MAX_CHECKS = 3  # follow-ups before a consumer that still reports its key working makes the revocation fail
STALE_PLANNED = timedelta(minutes=5)  # a planned revocation this old was left by a crashed instance: resume it
MESSAGE_VERSION = 1
PLAN_LISTS = ("remove", "groups", "inherited", "losses", "blockers", "notes")


@dataclass(frozen=True)
class RevocationOutcome:
    """What a request did. `status`: planned (dry run), executed, resumed, already-revoked, blocked, failed;
    restored, already-restored."""

    status: str
    plan: RevocationPlan | None = None
    revocation: Revocation | None = None
    audit_record_id: str | None = None
    error: CmkError | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "audit_record_id": self.audit_record_id}
        if self.revocation is not None:
            body.update(self.revocation.to_json())
            body["status"] = self.status
            body["audit_record_id"] = self.audit_record_id or self.revocation.audit_record_id
        elif self.plan is not None:
            body["dry_run"] = self.status == "planned"
            body["plan"] = self.plan.to_json()
        return body


@dataclass(frozen=True)
class CheckOutcome:
    revocation_id: str
    phase: str
    status: str  # verified, failed, rescheduled, skipped
    detail: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"revocation_id": self.revocation_id, "phase": self.phase, "status": self.status, "detail": self.detail}


# ---- what the state is -----------------------------------------------------------------------------------------
def managed_key(inventory: Any, name: str) -> Any:
    try:
        return inventory.key(name)
    except UnknownKey as exc:
        raise UnknownReference("key", str(exc)) from None


def consumer_states(managed: Any, consumers: Consumers) -> dict[str, ConsumerState | None]:
    states: dict[str, ConsumerState | None] = {}
    for consumer in managed.consumers:
        if consumer.resource_id is None:
            continue
        try:
            states[consumer.resource_id.lower()] = consumers.get_state(consumer.kind.value, consumer.resource_id)
        except CmkError:
            states[consumer.resource_id.lower()] = None
    return states


def audit_record(
    audit: AuditTrail,
    clock: Clock,
    action: str,
    trigger: str,
    key: str,
    outcome: str,
    detail: dict,
    record_id: str | None = None,
) -> str:
    record = AuditRecord(record_id or uuid.uuid4().hex, clock.now(), action, trigger, key, outcome, detail=detail)
    audit.append(record)
    return record.record_id


MAX_ALERT_MESSAGE_CHARS = 1_000


def notify_only_policy(managed: Any) -> RotationPolicy:
    """The inventory's rotation policy without its Rotate action: what a shredded key keeps, so that Key Vault's own
    rotation never brings it back with a fresh, enabled version (Notify stays; without an expiry the service keeps
    its default Notify)."""
    wanted = managed.rotation.to_policy()
    return RotationPolicy(wanted.expires_in, tuple(a for a in wanted.actions if a.action != RotationActionType.ROTATE))


def rotates(policy: RotationPolicy | None) -> bool:
    return policy is not None and any(a.action == RotationActionType.ROTATE for a in policy.actions)


def revocation_alert(kind: str, severity: Severity, revocation: Revocation, message: str, **extra: Any) -> Alert:
    """Who asked, what, why, when, the plan's summary and counts, and the audit record: what a responder needs first.
    The plan itself (which may list hundreds of grants) stays in the ledger, GET /api/revocations/{id}, and the audit
    trail, so the alert stays far below the queue's limit however large the plan."""
    plan = revocation.plan or {}
    counts = {name: len(plan[name]) for name in PLAN_LISTS if isinstance(plan.get(name), list)}
    data = {
        "revocation_id": revocation.revocation_id,
        "key": revocation.key,
        "action": revocation.action.value,
        "principal_id": revocation.principal_id,
        "service": revocation.service,
        "requested_by": revocation.requested_by,
        "reason": revocation.reason,
        "requested_at": revocation.to_json()["requested_at"],
        "state": revocation.state.value,
        "audit_record_id": revocation.audit_record_id,
        "plan_summary": plan.get("summary"),
        "counts": {**counts, "executed": len(revocation.executed)},
        "details": f"GET /api/revocations/{revocation.revocation_id}",
        **extra,
    }
    if len(message) > MAX_ALERT_MESSAGE_CHARS:
        message = message[: MAX_ALERT_MESSAGE_CHARS - 1] + "…"
    return Alert(kind, f"/revocations/{revocation.revocation_id}", severity, message, data)


def send_alert(alert: Alert, *, alerts: Alerts, audit: AuditTrail, clock: Clock) -> None:
    """An alert that cannot be queued is logged and audited (shared.alerts.publish_or_record); the act it reports
    stands, and its follow-up check was queued before it."""
    publish_or_record(alerts, alert, audit=audit, clock=clock)


def key_use_at_key(managed, principal: str, access: AccessControl, roles: RoleDefinitions) -> list:
    """The principal's assignments at the key itself that grant key use, or might (an unreadable role): judged as
    the plan judges them."""
    scope = normalize_scope(managed.scope)
    mine = [
        a
        for a in access.list_assignments(managed.scope)
        if a.principal_id.lower() == principal and normalize_scope(a.scope) == scope
    ]
    definitions = definitions_for(mine, roles)
    return [a for a in mine if key_use(definitions, a) is not False]


def other_key_use(managed: Any, principal: str, inventory: Any, access: AccessControl, roles: RoleDefinitions) -> list:
    """Key use a revoke-access did not remove and the subject may still have: its own grants inherited from above
    the key, and group grants (ARM does not show a group's members, so any group grant of key use may include the
    subject). The inventory's break-glass groups are the declared exception: groups of people, PIM-activated and
    reviewed, that no revoked identity is in. Judged as the plan judges key use (an unreadable role might grant it)."""
    scope = normalize_scope(managed.scope)
    break_glass = {p.principal_id.lower() for p in inventory.break_glass}
    candidates = [
        a
        for a in access.list_assignments(managed.scope)
        if (a.principal_id.lower() == principal and normalize_scope(a.scope) != scope)
        or (a.principal_type.lower() in GROUP_TYPES and a.principal_id.lower() not in break_glass)
    ]
    definitions = definitions_for(candidates, roles)
    return [a for a in candidates if key_use(definitions, a) is not False]


def describe_other_key_use(principal: str, assignment: Any) -> str:
    if assignment.principal_id.lower() == principal:
        return f"{principal} holds key use through a grant inherited from {assignment.scope} ({assignment.id})"
    return (
        f"group {assignment.principal_id} has key use ({assignment.id}) and {principal} may be a member (ARM does "
        "not show group members)"
    )


def probe_unwrap(managed, dekstore: DekStore, vault: KeyVault) -> str:
    """Try to open one registry DEK under the key: 'refused' (what a shred must give), 'unwrapped', 'no-dek'."""
    for consumer in managed.consumers:
        if consumer.kind is not ConsumerKind.DEK_TABLE:
            continue
        prefix = consumer.options.get("partition_prefix") or managed.name
        for partition in all_shards(prefix, shard_count(consumer.options)):
            page = dekstore.list_page(partition, page_size=1)
            if not page.items:
                continue
            dek = page.items[0]
            try:
                vault.unwrap_key(dek.key_id, dek.wrapped, dek.algorithm)
            except (Forbidden, NotFound):
                return "refused"
            return "unwrapped"
    return "no-dek"


def record_refusal(route: str, caller: str, error: BaseException, *, audit: AuditTrail, clock: Clock) -> None:
    """Every call to the dangerous routes is on the record, the refused ones too (with why, never the body)."""
    code = getattr(error, "code", "InternalError")
    field_name = getattr(error, "field", None)
    audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            route,
            f"operator:{caller}",
            "",
            "refused",
            detail={"error": code, "field": field_name},
        )
    )
