"""Carrying out an access plan in enforce mode, step by step, each verified by reading back what ARM lists.

Split from `functions.access.reconcile` (which decides and reports): here every change is made, checked and recorded. A
consumer's grant is read back before any removal that needs it, and the revocation ledger is read again right
before (and right after) every grant: a revocation that lands between the plan and the grant wins (review M1).
"""

from __future__ import annotations

import uuid
from typing import Any

from functions.access.plan import AccessPlan, GrantRole, RemoveAssignment, TrimKeyOps
from shared.audit import AuditRecord, principal_label
from shared.errors import CmkError
from shared.ports import AccessControl, AuditTrail, Clock, KeyVault, Revocations
from shared.telemetry import NO_TELEMETRY, Telemetry, names


def revoked_now(managed, principal_id: str, revocations: Revocations) -> bool:
    """The ledger as it stands at this moment (a revocation may have landed since the plan was made)."""
    return principal_id.lower() in {p.lower() for p in revocations.revoked(managed.name)}


def execute(
    managed,
    plan: AccessPlan,
    *,
    trigger: str,
    access: AccessControl,
    vault: KeyVault,
    revocations: Revocations,
    audit: AuditTrail,
    clock: Clock,
    inventory: Any = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> tuple[list[str], list[str]]:
    """Carry out `plan.changes` in order (deferred steps are not changes); returns what was done and what was
    skipped, each as one line. A step that fails is recorded and skipped, and a failed consumer grant keeps every
    removal that needs that grant from running."""
    executed: list[str] = []
    skipped: list[str] = []

    def done(action: str, outcome: str, principal: str | None, detail: dict) -> None:
        """One record and one event per change, the principal named with its role (`mysql (8e2c…)`)."""
        if principal is not None:
            detail = {**detail, "principal_name": principal_label(inventory, principal)}
        record(audit, managed, trigger, clock, action, outcome, detail)
        who = principal_label(inventory, principal) if principal else ""
        telemetry.event(
            names.ACCESS_REMEDIATED, key=managed.name, principal=who, consumer=managed.service, action=action,
            outcome=outcome,
        )  # fmt: skip

    consumer_minimal = True  # until a needed grant fails: then no consumer grant may be removed
    for step in plan.changes:
        try:
            if isinstance(step, GrantRole):
                if revoked_now(managed, step.principal_id, revocations):
                    skipped.append(f"GrantRole {step.principal_id}: revoked since the plan was made; not granted")
                    continue
                made = access.create_assignment(
                    step.scope, step.role_definition_id, step.principal_id, step.principal_type
                )
                if revoked_now(managed, step.principal_id, revocations):
                    access.delete_assignment(made.id)  # the revocation landed while granting: it wins, at once
                    done("access-grant", "withdrawn", step.principal_id,
                         {"principal": step.principal_id, "assignment": made.id})  # fmt: skip
                    skipped.append(f"GrantRole {step.principal_id}: revoked while granting; the grant was deleted")
                    continue
                seen = any(a.id.lower() == made.id.lower() for a in access.list_assignments(step.scope))
                if not seen:
                    raise CmkError(f"the new assignment {made.id} is not listed")
                done(
                    "access-grant",
                    "granted",
                    step.principal_id,
                    {"principal": step.principal_id, "assignment": made.id, "reason": step.reason},
                )
                executed.append(f"GrantRole {step.principal_id}")
            elif isinstance(step, TrimKeyOps):
                updated = vault.update_version(managed.ref, step.version, ops=step.ops)
                if set(updated.ops) != set(step.ops):
                    raise CmkError(f"version {step.version} still allows {sorted(set(updated.ops) - set(step.ops))}")
                done("trim-key-ops", "trimmed", None, {"version": step.version, "removed": list(step.removed)})
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
                done(
                    "access-remove",
                    "removed",
                    step.principal_id,
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
            record(
                audit,
                managed,
                trigger,
                clock,
                "access-step",
                "failed",
                {"step": type(step).__name__, "error": exc.code},
            )
    return executed, skipped


def record(audit: AuditTrail, managed, trigger: str, clock: Clock, action: str, outcome: str, detail: dict) -> None:
    audit.append(AuditRecord(uuid.uuid4().hex, clock.now(), action, trigger, managed.name, outcome, detail=detail))
