"""Revoking: plan from what Azure reports now, record in the ledger first, carry out, read back, queue the check."""

from __future__ import annotations

import uuid
from typing import Any

from functions.revocation.common import (
    ACCESS_REVOKED_ALERT,
    FAILED_ALERT,
    KEY_DISABLED_ALERT,
    MESSAGE_VERSION,
    STALE_PLANNED,
    RevocationOutcome,
    audit_record,
    consumer_states,
    key_use_at_key,
    managed_key,
    notify_only_policy,
    probe_unwrap,
    revocation_alert,
    rotates,
    send_alert,
)
from functions.revocation.plan import RevocationPlan, plan_revocation
from shared.audit import principal_label
from shared.errors import (
    CmkError,
    Conflict,
    PreconditionFailed,
    Unprocessable,
)
from shared.http.commands import RevokeCommand
from shared.model import ConsumerKind, Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Clock,
    Consumers,
    DekStore,
    KeyVault,
    Revocations,
    RoleDefinitions,
    Vaults,
    WorkQueue,
)
from shared.revocation import (
    Revocation,
    RevocationAction,
    RevocationState,
)
from shared.roles.catalog import definitions_for
from shared.telemetry import NO_TELEMETRY, Telemetry, names


def _principal(command: RevokeCommand, inventory: Any) -> tuple[str | None, str | None]:
    """(principal id, service) for the command; Unprocessable naming the field for a name the inventory lacks."""
    if command.action == RevocationAction.DISABLE_KEY.value:
        return None, None
    if command.service is not None:
        services = sorted({k.service for k in inventory.keys})
        match = next((k for k in inventory.keys if k.service.lower() == command.service.lower()), None)
        if match is None:
            raise Unprocessable("service", f"is not a service of the inventory (known: {', '.join(services)})")
        return match.identity.principal_id.lower(), match.service
    principal = (command.principal_id or "").lower()
    service = next((k.service for k in inventory.keys if k.identity.principal_id.lower() == principal), None)
    return principal, service


def _known_principals(inventory: Any) -> set[str]:
    known = {k.identity.principal_id.lower() for k in inventory.keys}
    known |= {p.principal_id.lower() for p in inventory.break_glass}
    return known | ({inventory.app_identity.lower()} if inventory.app_identity else set())


def _dek_count(managed: Any, dekstore: DekStore) -> int | None:
    if not any(c.kind is ConsumerKind.DEK_TABLE for c in managed.consumers):
        return 0
    try:
        return sum(dekstore.count_by_key_id(managed.ref).values())
    except CmkError:
        return None


def _plan(
    managed, action, principal, service, *, inventory, access, roles, vault, vault_settings, consumers, dekstore,
    by_service: bool = False,
) -> RevocationPlan:  # fmt: skip
    settings = vault_settings.get_vault(managed.vault.resource_id)
    assignments = access.list_assignments(managed.scope) if settings.rbac_authorization else []
    return plan_revocation(
        managed,
        action=action,
        principal_id=principal,
        service=service,
        inventory=inventory,
        rbac_authorization=settings.rbac_authorization,
        assignments=assignments,
        definitions=definitions_for(assignments, roles),
        versions=vault.list_versions(managed.ref),
        dek_count=_dek_count(managed, dekstore),
        consumer_states=consumer_states(managed, consumers),
        by_service=by_service,
    )


# ---- revoke ----------------------------------------------------------------------------------------------------
def revoke(
    command: RevokeCommand,
    *,
    inventory: Any,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    vault_settings: Vaults,
    consumers: Consumers,
    dekstore: DekStore,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    revocation_checks: WorkQueue,
    follow_up_delay: int,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RevocationOutcome:
    managed = managed_key(inventory, command.key)
    action = RevocationAction(command.action)
    principal, service = _principal(command, inventory)
    if action is RevocationAction.DISABLE_KEY and not command.dry_run and command.confirm != managed.name:
        raise Unprocessable("confirm", f"must be the key's name, {managed.name!r}, to disable every version of it")
    ports = {
        "inventory": inventory,
        "access": access,
        "roles": roles,
        "vault": vault,
        "vault_settings": vault_settings,
        "consumers": consumers,
        "dekstore": dekstore,
    }
    plan = _plan(managed, action, principal, service, **ports, by_service=command.service is not None)
    principal = plan.principal_id  # a service's revocation: the identity it really uses (the plan reads it)
    if principal is not None and principal not in _known_principals(inventory) and not plan.remove + plan.inherited:
        raise Unprocessable(
            "principal_id", f"{principal} is no identity of the inventory and holds no key use on {managed.name}"
        )
    trigger = f"operator:{command.caller}"
    detail = {
        "action": action.value,
        "principal_id": principal,
        "reason": command.reason,
        "dry_run": command.dry_run,
        "plan": plan.summary,
    }
    if command.dry_run:
        record = audit_record(audit, clock, "revocation-plan", trigger, managed.name, "planned", detail)
        return RevocationOutcome("planned", plan, audit_record_id=record)
    if plan.blockers:
        record = audit_record(audit, clock, "revocation", trigger, managed.name, "blocked", detail)
        return RevocationOutcome("blocked", plan, audit_record_id=record, error=Conflict(plan.blockers[0]))

    now = clock.now()
    record_id = uuid.uuid4().hex
    fresh = Revocation(
        revocation_id=uuid.uuid4().hex,
        key=managed.name,
        action=action,
        principal_id=principal,
        service=service,
        reason=command.reason,
        requested_by=command.caller,
        requested_at=now,
        state=RevocationState.PLANNED,
        plan=plan.to_json(),
        updated_at=now,
        audit_record_id=record_id,
    )
    revocation, opened = revocations.open(fresh)  # the ledger first: from here on reconciliation respects it
    status = "executed"
    if not opened:
        stale = revocation.state is RevocationState.PLANNED and (revocation.updated_at or now) + STALE_PLANNED <= now
        if revocation.state is not RevocationState.FAILED and not stale:
            audit_record(
                audit,
                clock,
                "revocation",
                trigger,
                managed.name,
                "already-revoked",
                {**detail, "id": revocation.revocation_id},
            )
            return RevocationOutcome(
                "already-revoked", revocation=revocation, audit_record_id=revocation.audit_record_id
            )
        status = "resumed"
        try:
            revocation = revocations.update(
                revocation.moved(RevocationState.PLANNED, now, plan=plan.to_json(), failure=None)
            )
        except PreconditionFailed:
            return _lost_race(revocation, audit, clock, trigger, revocations)
    # The ledger holds the plan from here on ("planned", before anything changes); the trail gets the one record of
    # this action once it is carried out (executed or failed), under the id the ledger points at.
    detail = {**detail, "id": revocation.revocation_id, "principal_name": principal_label(inventory, principal)}
    if status == "resumed":
        detail["resumed"] = True
    return _execute(
        revocation,
        managed,
        plan,
        record=(detail, record_id if opened else None),
        telemetry=telemetry,
        status=status,
        ports=ports,
        revocations=revocations,
        audit=audit,
        alerts=alerts,
        clock=clock,
        revocation_checks=revocation_checks,
        follow_up_delay=follow_up_delay,
    )


def _lost_race(revocation: Revocation, audit, clock, trigger: str, revocations: Revocations):
    """Another instance moved this revocation first (same request twice at once): it speaks and alerts for both;
    this call is still on the record."""
    current = revocations.get(revocation.revocation_id)
    audit_record(
        audit, clock, "revocation", trigger, revocation.key, "already-revoked", {"id": revocation.revocation_id}
    )
    return RevocationOutcome("already-revoked", revocation=current, audit_record_id=current.audit_record_id)


def _carry_out(revocation: Revocation, managed, ports: dict) -> tuple[list[str], list[str]]:
    """Do the plan's steps, then read back until nothing of it is left (a grant or version that appeared since the
    plan is dealt with too, up to three rounds). Returns (done, still wrong)."""
    access, roles, vault = ports["access"], ports["roles"], ports["vault"]
    done: list[str] = []
    if revocation.action is RevocationAction.DISABLE_KEY and rotates(vault.get_rotation_policy(managed.ref)):
        # First: a policy rotation between disabling and this would give the key a fresh, enabled version.
        vault.set_rotation_policy(managed.ref, notify_only_policy(managed))
    for _ in range(3):
        if revocation.action is RevocationAction.DISABLE_KEY:
            enabled = [v.version for v in vault.list_versions(managed.ref) if v.enabled]
            if not enabled:
                return done, []
            for version in enabled:
                vault.update_version(managed.ref, version, enabled=False)
                done.append(version)
        else:
            left = key_use_at_key(managed, revocation.principal_id, access, roles)
            if not left:
                return done, []
            for a in left:
                access.delete_assignment(a.id)
                done.append(a.id)
    if revocation.action is RevocationAction.DISABLE_KEY:
        wrong = [f"version {v.version} is still enabled" for v in vault.list_versions(managed.ref) if v.enabled]
    else:
        wrong = [
            f"assignment {a.id} is still listed"
            for a in key_use_at_key(managed, revocation.principal_id, access, roles)
        ]
    return done, wrong


def _execute(
    revocation,
    managed,
    plan,
    *,
    record: tuple[dict, str | None],
    telemetry: Telemetry,
    status,
    ports,
    revocations,
    audit,
    alerts,
    clock,
    revocation_checks,
    follow_up_delay,
) -> RevocationOutcome:
    trigger = f"operator:{revocation.requested_by}"
    try:
        done, wrong = _carry_out(revocation, managed, ports)
        shred = revocation.action is RevocationAction.DISABLE_KEY
        if not wrong and shred and probe_unwrap(managed, ports["dekstore"], ports["vault"]) == "unwrapped":
            wrong = ["a registry DEK still unwraps under the key"]
    except CmkError as exc:
        done, wrong, error = [], [f"{exc.code}: {exc}"], exc
    else:
        error = None
    now = clock.now()
    executed = tuple(dict.fromkeys((*revocation.executed, *done)))
    if wrong:
        failed = revocation.moved(RevocationState.FAILED, now, executed=executed, failure="; ".join(wrong)[:1000])
        try:
            failed = revocations.update(failed)
        except PreconditionFailed:
            return _lost_race(revocation, audit, clock, trigger, revocations)
        detail, record_id = record
        audit_record(
            audit,
            clock,
            "revocation",
            trigger,
            managed.name,
            "failed",
            {**detail, "failure": failed.failure},
            record_id,
        )
        _revocation_event(telemetry, managed, failed, "failed")
        send_alert(
            revocation_alert(
                FAILED_ALERT, Severity.CRITICAL, failed, f"revocation of {managed.name} FAILED: {failed.failure}"
            ),
            alerts=alerts,
            audit=audit,
            clock=clock,
        )
        return RevocationOutcome("failed", plan, failed, error=error or Conflict(failed.failure or "failed"))
    try:
        executed_rev = revocations.update(
            revocation.moved(RevocationState.EXECUTED, now, executed=executed, executed_at=now)
        )
    except PreconditionFailed:
        return _lost_race(revocation, audit, clock, trigger, revocations)
    detail, record_id = record
    audit_record(
        audit, clock, "revocation", trigger, managed.name, "executed", {**detail, "executed": list(executed)}, record_id
    )
    _revocation_event(telemetry, managed, executed_rev, "executed")
    if executed_rev.action is RevocationAction.DISABLE_KEY:
        alert = revocation_alert(
            KEY_DISABLED_ALERT,
            Severity.CRITICAL,
            executed_rev,
            f"{managed.name} crypto-shredded by {executed_rev.requested_by}: {len(executed)} version(s) disabled",
        )
    else:
        alert = revocation_alert(
            ACCESS_REVOKED_ALERT,
            Severity.HIGH,
            executed_rev,
            f"{principal_label(ports['inventory'], executed_rev.principal_id)} revoked from {managed.name} by "
            f"{executed_rev.requested_by}",
        )
    # The follow-up first: an alert that cannot be queued must not leave the revocation unverified.
    revocation_checks.send(
        {"version": MESSAGE_VERSION, "revocation_id": executed_rev.revocation_id, "phase": "revocation"},
        delay_seconds=follow_up_delay,
    )
    send_alert(alert, alerts=alerts, audit=audit, clock=clock)
    return RevocationOutcome(status, plan, executed_rev)


def _revocation_event(telemetry: Telemetry, managed: Any, revocation: Revocation, outcome: str) -> None:
    """`consumer`: whose access went (the service, or the principal named with its role); the whole key for a
    crypto-shred."""
    if revocation.action is RevocationAction.DISABLE_KEY:
        consumer = "every consumer"
    else:
        consumer = revocation.service or revocation.principal_id or ""
    telemetry.event(names.REVOCATION_EXECUTED, key=managed.name, consumer=consumer, outcome=outcome)
