"""Least privilege, kept: reconcile who can use each key on every access change, and never lock a consumer out.

`reconcile_key` reads the key's assignments (and their role definitions), the vault's permission model and the key's
versions, asks `plan_access` what must change, then, in enforce mode, carries the plan out step by step, verifying
each: a consumer's minimal grant is created and seen before any broader grant of its goes. In audit mode the same
plan is reported. ARM applies RBAC changes after up to about ten minutes, so every remediation schedules a follow-up
check through the queue that re-reads the assignments and probes the app's own access.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from functions.access_plan import AccessPlan, GrantRole, RemoveAssignment, Report, TrimKeyOps, plan_access
from shared.audit import AuditRecord
from shared.errors import CmkError, MalformedMessage
from shared.inventory_model import UnknownKey
from shared.model import Alert, Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Clock,
    KeyVault,
    Revocations,
    RoleDefinitions,
    Vaults,
    WorkQueue,
)
from shared.role_catalog import definitions_for
from shared.roles import role_definition_id

VIOLATION_ALERT = "CmkGuardian.Access.Violation"
REMEDIATED_ALERT = "CmkGuardian.Access.Remediated"
CONSUMER_LOST_ALERT = "CmkGuardian.Access.ConsumerAccessLost"
FOLLOW_UP_SECONDS = 600  # RBAC changes reach Key Vault after up to about 10 minutes


@dataclass(frozen=True)
class ReconcileOutcome:
    key: str
    status: str  # "compliant", "reported", "remediated", "partial", "unreadable"
    plan: AccessPlan | None = None
    executed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    alerts: tuple[Alert, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "steps": [
                type(s).__name__ + ": " + getattr(s, "reason", "") for s in (self.plan.steps if self.plan else ())
            ],
            "executed": list(self.executed),
            "skipped": list(self.skipped),
        }


def reconcile_key(
    managed: Any,
    *,
    trigger: str,
    inventory: Any,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    vault_settings: Vaults,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    access_checks: WorkQueue | None = None,
    all_versions: bool = True,
) -> ReconcileOutcome:
    try:
        settings = vault_settings.get_vault(managed.vault.resource_id)
        assignments = [] if not settings.rbac_authorization else access.list_assignments(managed.scope)
        definitions = definitions_for(assignments, roles)  # an unreadable role: plan_access leaves its grant alone
        versions = vault.list_versions(managed.ref) if all_versions else [vault.get_key(managed.ref)]
        revoked = revocations.revoked(managed.name)
    except CmkError as exc:
        return ReconcileOutcome(managed.name, "unreadable", skipped=(f"{exc.code}: {exc}",))
    subscription = managed.vault.subscription_id
    plan = plan_access(
        managed,
        assignments=assignments,
        definitions=definitions,
        inventory=inventory,
        revoked=revoked,
        versions=versions,
        minimal_role_id=role_definition_id(subscription, managed.role),
    )
    if not settings.rbac_authorization:
        plan = AccessPlan(
            managed.name,
            (*plan.steps, Report(None, "the vault authorizes from access policies: nothing is changed there")),
        )
    if not plan.steps:
        return ReconcileOutcome(managed.name, "compliant", plan)
    sent = [_violation_alert(managed, plan, trigger, inventory.enforcing)]
    lost = [s for s in plan.steps if isinstance(s, GrantRole)]
    if not inventory.enforcing or not settings.rbac_authorization:
        if lost:
            sent.append(_consumer_lost_alert(managed, restored=False))
        for alert in sent:
            alerts.publish(alert)
        _record(audit, managed, trigger, clock, "access-report", "reported", {"steps": _describe(plan)})
        return ReconcileOutcome(managed.name, "reported", plan, alerts=tuple(sent))

    executed, skipped = _execute(managed, plan, trigger=trigger, access=access, vault=vault, audit=audit, clock=clock)
    consumer_ok = not any(s.startswith("GrantRole") for s in skipped)
    if lost:
        sent.append(_consumer_lost_alert(managed, restored=consumer_ok))
    if executed:
        sent.append(_remediated_alert(managed, executed, trigger))
        if access_checks is not None:
            access_checks.send({"version": 1, "key": managed.name, "trigger": trigger}, delay_seconds=FOLLOW_UP_SECONDS)
    for alert in sent:
        alerts.publish(alert)
    status = "remediated" if executed and not skipped else ("partial" if executed or skipped else "reported")
    return ReconcileOutcome(managed.name, status, plan, tuple(executed), tuple(skipped), tuple(sent))


def _execute(managed, plan: AccessPlan, *, trigger, access: AccessControl, vault: KeyVault, audit, clock):
    executed: list[str] = []
    skipped: list[str] = []

    def note(action: str, outcome: str, **detail: Any) -> None:
        _record(audit, managed, trigger, clock, action, outcome, detail)

    consumer_minimal = True  # until a needed grant fails: then no consumer grant may be removed
    for step in plan.changes:
        try:
            if isinstance(step, GrantRole):
                made = access.create_assignment(
                    step.scope, step.role_definition_id, step.principal_id, step.principal_type
                )
                seen = any(a.id.lower() == made.id.lower() for a in access.list_assignments(step.scope))
                if not seen:
                    raise CmkError(f"the new assignment {made.id} is not listed")
                _record(
                    audit,
                    managed,
                    trigger,
                    clock,
                    "access-grant",
                    "granted",
                    {"principal": step.principal_id, "assignment": made.id, "reason": step.reason},
                )
                executed.append(f"GrantRole {step.principal_id}")
            elif isinstance(step, TrimKeyOps):
                updated = vault.update_version(managed.ref, step.version, ops=step.ops)
                if set(updated.ops) != set(step.ops):
                    raise CmkError(f"version {step.version} still allows {sorted(set(updated.ops) - set(step.ops))}")
                _record(
                    audit,
                    managed,
                    trigger,
                    clock,
                    "trim-key-ops",
                    "trimmed",
                    {"version": step.version, "removed": list(step.removed)},
                )
                executed.append(f"TrimKeyOps {step.version}")
            elif isinstance(step, RemoveAssignment):
                if step.keeps_consumer_access_via and not consumer_minimal:
                    skipped.append(
                        f"RemoveAssignment {step.assignment_id}: the consumer's minimal grant is not in place"
                    )
                    continue
                access.delete_assignment(step.assignment_id)
                if any(a.id.lower() == step.assignment_id.lower() for a in access.list_assignments(managed.scope)):
                    raise CmkError(f"assignment {step.assignment_id} is still listed")
                _record(
                    audit,
                    managed,
                    trigger,
                    clock,
                    "access-remove",
                    "removed",
                    {
                        "principal": step.principal_id,
                        "assignment": step.assignment_id,
                        "role": step.role,
                        "reason": step.reason,
                    },
                )
                executed.append(f"RemoveAssignment {step.assignment_id}")
        except CmkError as exc:
            if isinstance(step, GrantRole):
                consumer_minimal = False
            skipped.append(f"{type(step).__name__}: {exc.code}: {exc}")
            _record(
                audit,
                managed,
                trigger,
                clock,
                "access-step",
                "failed",
                {"step": type(step).__name__, "error": exc.code},
            )
    return executed, skipped


def _record(audit: AuditTrail, managed, trigger: str, clock: Clock, action: str, outcome: str, detail: dict) -> None:
    audit.append(AuditRecord(uuid.uuid4().hex, clock.now(), action, trigger, managed.name, outcome, detail=detail))


def _describe(plan: AccessPlan) -> list[str]:
    return [f"{type(s).__name__}: {getattr(s, 'reason', '')}" for s in plan.steps]


def _violation_alert(managed, plan: AccessPlan, trigger: str, enforcing: bool) -> Alert:
    return Alert(
        VIOLATION_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}",
        Severity.HIGH,
        f"{managed.name}: {plan.violations} access violation(s) found"
        + ("; being remediated" if enforcing and plan.changes else "; reported only"),
        {"key": managed.name, "trigger": trigger, "steps": _describe(plan)},
    )


def _remediated_alert(managed, executed: list[str], trigger: str) -> Alert:
    return Alert(
        REMEDIATED_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}",
        Severity.INFO,
        f"{managed.name}: {len(executed)} change(s) made; Key Vault may take up to 10 minutes to apply RBAC changes, "
        "a follow-up check is scheduled",
        {"key": managed.name, "trigger": trigger, "executed": executed},
    )


def _consumer_lost_alert(managed, *, restored: bool) -> Alert:
    return Alert(
        CONSUMER_LOST_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}",
        Severity.HIGH,
        f"{managed.service} identity {managed.identity.principal_id} had lost its access to {managed.name} without a "
        + ("sanctioned revocation; it was restored" if restored else "sanctioned revocation; it is NOT restored"),
        {"key": managed.name, "principal_id": managed.identity.principal_id, "restored": restored},
    )


def follow_up_check(
    message: object,
    *,
    inventory: Any,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    vault_settings: Vaults,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
) -> ReconcileOutcome:
    """Ten minutes after a remediation, when Key Vault has applied it: probe the app's own access with a real read,
    then reconcile again from what ARM lists now (without scheduling another follow-up)."""
    if not isinstance(message, dict) or not isinstance(message.get("key"), str):
        raise MalformedMessage("key", "a follow-up check names the inventory key it checks")
    try:
        managed = inventory.key(message["key"])
    except UnknownKey:
        raise MalformedMessage("key", "not a managed key (no longer in the inventory?)") from None
    vault.get_key(managed.ref)  # the probe: raises (and the host retries) if the app itself lost its access
    return reconcile_key(
        managed,
        trigger=f"follow-up:{message.get('trigger', '')}"[:200],
        inventory=inventory,
        access=access,
        roles=roles,
        vault=vault,
        vault_settings=vault_settings,
        revocations=revocations,
        audit=audit,
        alerts=alerts,
        clock=clock,
    )
