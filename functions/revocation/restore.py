"""Break-glass restoration: give back what a revocation took, and reading one revocation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from functions.revocation.common import (
    ACCESS_RESTORED_ALERT,
    FAILED_ALERT,
    MESSAGE_VERSION,
    RevocationOutcome,
    audit_record,
    managed_key,
    revocation_alert,
    rotates,
    send_alert,
)
from functions.revocation.plan import PlannedAssignment
from shared.arm_ids import last_segment
from shared.audit import principal_label
from shared.errors import (
    CmkError,
    Conflict,
    NotFound,
    PreconditionFailed,
    UnknownReference,
)
from shared.http.commands import RestoreCommand
from shared.model import Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Clock,
    KeyVault,
    Revocations,
    WorkQueue,
)
from shared.revocation import (
    Restoration,
    Revocation,
    RevocationAction,
    RevocationState,
    check_revocation_id,
)
from shared.roles.builtin import role_definition_id
from shared.telemetry import NO_TELEMETRY, Telemetry, names


# ---- read --------------------------------------------------------------------------------------------------------
def get_revocation(revocation_id: str, *, revocations: Revocations) -> dict[str, Any]:
    check_revocation_id(revocation_id, "id")
    try:
        return revocations.get(revocation_id).to_json()
    except NotFound:
        raise UnknownReference("id", f"no revocation {revocation_id} was ever made") from None


# ---- restore -----------------------------------------------------------------------------------------------------
def restore(
    command: RestoreCommand,
    *,
    inventory: Any,
    access: AccessControl,
    vault: KeyVault,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    revocation_checks: WorkQueue,
    follow_up_delay: int,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RevocationOutcome:
    """Break-glass: give back what the revocation took (its removed assignments, re-created as they were, or the
    versions it disabled), after closing its ledger entry so that reconciliation manages the grant again."""
    check_revocation_id(command.revocation_id)
    try:
        revocation = revocations.get(command.revocation_id)
    except NotFound:
        raise UnknownReference("revocation_id", f"no revocation {command.revocation_id} was ever made") from None
    managed = managed_key(inventory, revocation.key)
    trigger = f"operator:{command.caller}"
    if revocation.state is RevocationState.RESTORED:
        # A repeated break-glass press changes nothing, but it is a call to a dangerous route: on the record too.
        record_id = audit_record(
            audit,
            clock,
            "restoration",
            trigger,
            managed.name,
            "already-restored",
            {"id": revocation.revocation_id, "reason": command.reason},
        )
        return RevocationOutcome("already-restored", revocation=revocation, audit_record_id=record_id)
    if revocation.state is RevocationState.PLANNED:
        raise Conflict(f"revocation {revocation.revocation_id} is still being carried out; restore it once it is")
    now = clock.now()
    # One action, one record: written once it is carried out (restored or failed), under the id the ledger's
    # restoration points at from the start; the ledger's RESTORING state is what holds the request until then.
    record_id = uuid.uuid4().hex
    detail = {
        "id": revocation.revocation_id,
        "reason": command.reason,
        "action": revocation.action.value,
        "principal_name": principal_label(inventory, revocation.principal_id),
    }
    if revocation.state is not RevocationState.RESTORING:
        restoration = Restoration(command.reason, command.caller, now, record_id)
        try:
            revocation = revocations.update(revocation.moved(RevocationState.RESTORING, now, restoration=restoration))
        except PreconditionFailed:
            raise Conflict(f"revocation {revocation.revocation_id} changed meanwhile; ask again") from None
    revocations.close(revocation)  # first: a crash from here on leaves a grant reconciliation will not remove
    try:
        restored, wrong = _give_back(revocation, managed, inventory, access, vault)
    except CmkError as exc:
        restored, wrong = [], [f"{exc.code}: {exc}"]
    now = clock.now()
    restoration = replace(revocation.restoration, restored=tuple(restored), failure="; ".join(wrong)[:1000] or None)
    if wrong:
        failed = revocations.update(revocation.moved(RevocationState.RESTORING, now, restoration=restoration))
        audit_record(
            audit, clock, "restoration", trigger, managed.name, "failed", {**detail, "failure": restoration.failure},
            record_id,
        )  # fmt: skip
        _restored_event(telemetry, managed, failed, "failed")
        send_alert(
            revocation_alert(
                FAILED_ALERT,
                Severity.CRITICAL,
                failed,
                f"restoration of {managed.name} FAILED: {restoration.failure}",
                phase="restoration",
            ),
            alerts=alerts,
            audit=audit,
            clock=clock,
        )
        return RevocationOutcome(
            "failed", revocation=failed, audit_record_id=record_id, error=Conflict(restoration.failure)
        )
    restoration = replace(restoration, restored_at=now)
    done = revocations.update(revocation.moved(RevocationState.RESTORED, now, restoration=restoration))
    audit_record(
        audit, clock, "restoration", trigger, managed.name, "restored", {**detail, "restored": restored}, record_id
    )
    _restored_event(telemetry, managed, done, "restored")
    revocation_checks.send(  # the follow-up first: an alert that cannot be queued must not leave it unverified
        {"version": MESSAGE_VERSION, "revocation_id": done.revocation_id, "phase": "restoration"},
        delay_seconds=follow_up_delay,
    )
    send_alert(
        revocation_alert(
            ACCESS_RESTORED_ALERT,
            Severity.HIGH,
            done,
            f"break-glass restoration of {managed.name} by {command.caller}: {command.reason}",
            restored=len(restoration.restored),
            restoration_audit_record_id=restoration.audit_record_id,
        ),
        alerts=alerts,
        audit=audit,
        clock=clock,
    )
    return RevocationOutcome("restored", revocation=done, audit_record_id=record_id)


def _give_back(revocation: Revocation, managed, inventory, access: AccessControl, vault: KeyVault):
    restored: list[str] = []
    if revocation.action is RevocationAction.DISABLE_KEY:
        for version in revocation.executed:
            vault.update_version(managed.ref, version, enabled=True)
            restored.append(version)
        vault.set_rotation_policy(managed.ref, managed.rotation.to_policy())  # the shred made it Notify-only
        enabled = {v.version for v in vault.list_versions(managed.ref) if v.enabled}
        wrong = [f"version {v} is still disabled" for v in revocation.executed if v not in enabled]
        if not rotates(vault.get_rotation_policy(managed.ref)):
            wrong.append("the key's rotation policy has no Rotate action")
        return restored, wrong
    stored = revocation.plan.get("remove")
    if not isinstance(stored, list):
        # Restoration re-creates exactly what was removed; without that list it would restore nothing and say done.
        return restored, ["the revocation's removed assignments (plan.remove) cannot be read: nothing was restored"]
    removed = [PlannedAssignment.from_json(a) for a in stored]
    # One removed after the plan was made (it appeared meanwhile) was never described: it cannot be re-created.
    unknown = sorted({i.lower() for i in revocation.executed} - {a.assignment_id.lower() for a in removed})
    removed = [a for a in removed if a.assignment_id in revocation.executed] or removed
    if not removed and revocation.principal_id == managed.identity.principal_id:
        # Nothing was taken at the key (the consumer held nothing there): give it the minimal grant it needs.
        role = role_definition_id(managed.vault.subscription_id, managed.role)
        made = access.create_assignment(
            managed.scope, role, managed.identity.principal_id, managed.identity.principal_type
        )
        restored.append(made.id)
    for a in removed:
        made = access.create_assignment(
            a.scope, a.role_definition_id, a.principal_id, a.principal_type, name=last_segment(a.assignment_id)
        )
        restored.append(made.id)
    listed = {a.id.lower() for a in access.list_assignments(managed.scope)}
    wrong = [f"assignment {a} is not listed" for a in restored if a.lower() not in listed]
    return restored, wrong + [f"removed assignment {a} is not described in the stored plan" for a in unknown]


def _restored_event(telemetry: Telemetry, managed: Any, revocation: Any, outcome: str) -> None:
    consumer = revocation.service or revocation.principal_id or "every consumer"
    telemetry.event(names.REVOCATION_RESTORED, key=managed.name, consumer=consumer, outcome=outcome)
