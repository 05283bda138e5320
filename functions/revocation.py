"""Revocation and break-glass restoration: the most dangerous buttons, made deliberate, verified and loud.

A revocation is planned from what Azure reports now (functions.revocation_plan), and only a plan unless the operator
says `dry_run: false`. Executing it records it in the ledger first (so that reconciliation, running concurrently,
already treats the principal as revoked on purpose, and rotation leaves a shredded key alone), then removes the
principal's key-use assignments at the key, or disables every enabled version, and reads the state back at once.
RBAC changes reach Key Vault only after up to about ten minutes, so a follow-up check is queued for after that delay:
it re-reads the assignments and versions, probes where the app can (an unwrap under a shredded key must fail), and
looks at the consumers, which should now report that they lost their key. Only then is the revocation `verified`.

Every state change of a revocation is an ETag-guarded update of its record: of two instances handling the same
request or follow-up, exactly one moves it, and only that one alerts. A repeated request for the same subject
answers with the first revocation's id; one that failed is resumed by it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from functions.revocation_plan import PlannedAssignment, RevocationPlan, consumer_affected, key_use, plan_revocation
from shared.arm_ids import last_segment, normalize_scope
from shared.audit import AuditRecord
from shared.commands import RestoreCommand, RevokeCommand
from shared.dek_sharding import all_shards, shard_count
from shared.errors import (
    CmkError,
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedMessage,
    NotFound,
    PreconditionFailed,
    UnknownReference,
    Unprocessable,
)
from shared.inventory_model import UnknownKey
from shared.model import Alert, ConsumerKind, ConsumerState, Severity
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
    Restoration,
    Revocation,
    RevocationAction,
    RevocationState,
    check_revocation_id,
)
from shared.role_catalog import definitions_for
from shared.roles import role_definition_id

ACCESS_REVOKED_ALERT = "CmkGuardian.Revocation.AccessRevoked"
KEY_DISABLED_ALERT = "CmkGuardian.Revocation.KeyDisabled"
ACCESS_RESTORED_ALERT = "CmkGuardian.Revocation.AccessRestored"
VERIFIED_ALERT = "CmkGuardian.Revocation.Verified"
FAILED_ALERT = "CmkGuardian.Revocation.Failed"
MAX_CHECKS = 3  # follow-ups before a consumer that still reports its key working makes the revocation fail
STALE_PLANNED = timedelta(minutes=5)  # a planned revocation this old was left by a crashed instance: resume it
MESSAGE_VERSION = 1


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
def _managed(inventory: Any, name: str) -> Any:
    try:
        return inventory.key(name)
    except UnknownKey as exc:
        raise UnknownReference("key", str(exc)) from None


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


def _consumer_states(managed: Any, consumers: Consumers) -> dict[str, ConsumerState | None]:
    states: dict[str, ConsumerState | None] = {}
    for consumer in managed.consumers:
        if consumer.resource_id is None:
            continue
        try:
            states[consumer.resource_id.lower()] = consumers.get_state(consumer.kind.value, consumer.resource_id)
        except CmkError:
            states[consumer.resource_id.lower()] = None
    return states


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
        consumer_states=_consumer_states(managed, consumers),
        by_service=by_service,
    )


def _audit(
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


def _alert(kind: str, severity: Severity, revocation: Revocation, message: str, **extra: Any) -> Alert:
    """Who asked, what, why, when, the plan and the audit record: everything a responder needs in one event."""
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
        "plan": revocation.plan,
        **extra,
    }
    return Alert(kind, f"/revocations/{revocation.revocation_id}", severity, message, data)


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
) -> RevocationOutcome:
    managed = _managed(inventory, command.key)
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
        record = _audit(audit, clock, "revocation-plan", trigger, managed.name, "planned", detail)
        return RevocationOutcome("planned", plan, audit_record_id=record)
    if plan.blockers:
        record = _audit(audit, clock, "revocation", trigger, managed.name, "blocked", detail)
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
            _audit(
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
    detail = {**detail, "id": revocation.revocation_id}
    _audit(audit, clock, "revocation", trigger, managed.name, status, detail, record_id if opened else None)
    return _execute(
        revocation,
        managed,
        plan,
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
    _audit(audit, clock, "revocation", trigger, revocation.key, "already-revoked", {"id": revocation.revocation_id})
    return RevocationOutcome("already-revoked", revocation=current, audit_record_id=current.audit_record_id)


def _key_use_at_key(managed, principal: str, access: AccessControl, roles: RoleDefinitions) -> list:
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


def _probe_unwrap(managed, dekstore: DekStore, vault: KeyVault) -> str:
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


def _carry_out(revocation: Revocation, managed, ports: dict) -> tuple[list[str], list[str]]:
    """Do the plan's steps, then read back until nothing of it is left (a grant or version that appeared since the
    plan is dealt with too, up to three rounds). Returns (done, still wrong)."""
    access, roles, vault = ports["access"], ports["roles"], ports["vault"]
    done: list[str] = []
    for _ in range(3):
        if revocation.action is RevocationAction.DISABLE_KEY:
            enabled = [v.version for v in vault.list_versions(managed.ref) if v.enabled]
            if not enabled:
                return done, []
            for version in enabled:
                vault.update_version(managed.ref, version, enabled=False)
                done.append(version)
        else:
            left = _key_use_at_key(managed, revocation.principal_id, access, roles)
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
            for a in _key_use_at_key(managed, revocation.principal_id, access, roles)
        ]
    return done, wrong


def _execute(
    revocation, managed, plan, *, status, ports, revocations, audit, alerts, clock, revocation_checks, follow_up_delay
) -> RevocationOutcome:
    trigger = f"operator:{revocation.requested_by}"
    try:
        done, wrong = _carry_out(revocation, managed, ports)
        shred = revocation.action is RevocationAction.DISABLE_KEY
        if not wrong and shred and _probe_unwrap(managed, ports["dekstore"], ports["vault"]) == "unwrapped":
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
        _audit(
            audit,
            clock,
            "revocation",
            trigger,
            managed.name,
            "failed",
            {"id": failed.revocation_id, "failure": failed.failure},
        )
        alerts.publish(
            _alert(FAILED_ALERT, Severity.CRITICAL, failed, f"revocation of {managed.name} FAILED: {failed.failure}")
        )
        return RevocationOutcome("failed", plan, failed, error=error or Conflict(failed.failure or "failed"))
    try:
        executed_rev = revocations.update(revocation.moved(RevocationState.EXECUTED, now, executed=executed))
    except PreconditionFailed:
        return _lost_race(revocation, audit, clock, trigger, revocations)
    _audit(
        audit,
        clock,
        "revocation",
        trigger,
        managed.name,
        "executed",
        {"id": executed_rev.revocation_id, "executed": list(executed)},
    )
    if executed_rev.action is RevocationAction.DISABLE_KEY:
        alert = _alert(
            KEY_DISABLED_ALERT,
            Severity.CRITICAL,
            executed_rev,
            f"{managed.name} crypto-shredded by {executed_rev.requested_by}: {len(executed)} version(s) disabled",
        )
    else:
        alert = _alert(
            ACCESS_REVOKED_ALERT,
            Severity.HIGH,
            executed_rev,
            f"{executed_rev.principal_id} revoked from {managed.name} by {executed_rev.requested_by}",
        )
    alerts.publish(alert)
    revocation_checks.send(
        {"version": MESSAGE_VERSION, "revocation_id": executed_rev.revocation_id, "phase": "revocation"},
        delay_seconds=follow_up_delay,
    )
    return RevocationOutcome(status, plan, executed_rev)


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
) -> RevocationOutcome:
    """Break-glass: give back what the revocation took (its removed assignments, re-created as they were, or the
    versions it disabled), after closing its ledger entry so that reconciliation manages the grant again."""
    check_revocation_id(command.revocation_id)
    try:
        revocation = revocations.get(command.revocation_id)
    except NotFound:
        raise UnknownReference("revocation_id", f"no revocation {command.revocation_id} was ever made") from None
    managed = _managed(inventory, revocation.key)
    trigger = f"operator:{command.caller}"
    if revocation.state is RevocationState.RESTORED:
        # A repeated break-glass press changes nothing, but it is a call to a dangerous route: on the record too.
        record_id = _audit(
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
    record_id = _audit(
        audit,
        clock,
        "restoration",
        trigger,
        managed.name,
        "requested",
        {"id": revocation.revocation_id, "reason": command.reason, "action": revocation.action.value},
    )
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
        _audit(
            audit,
            clock,
            "restoration",
            trigger,
            managed.name,
            "failed",
            {"id": failed.revocation_id, "failure": restoration.failure},
        )
        alerts.publish(
            _alert(
                FAILED_ALERT,
                Severity.CRITICAL,
                failed,
                f"restoration of {managed.name} FAILED: {restoration.failure}",
                phase="restoration",
            )
        )
        return RevocationOutcome(
            "failed", revocation=failed, audit_record_id=record_id, error=Conflict(restoration.failure)
        )
    done = revocations.update(revocation.moved(RevocationState.RESTORED, now, restoration=restoration))
    _audit(
        audit, clock, "restoration", trigger, managed.name, "restored", {"id": done.revocation_id, "restored": restored}
    )
    alerts.publish(
        _alert(
            ACCESS_RESTORED_ALERT,
            Severity.HIGH,
            done,
            f"break-glass restoration of {managed.name} by {command.caller}: {command.reason}",
            restoration=restoration.to_json(),
        )
    )
    revocation_checks.send(
        {"version": MESSAGE_VERSION, "revocation_id": done.revocation_id, "phase": "restoration"},
        delay_seconds=follow_up_delay,
    )
    return RevocationOutcome("restored", revocation=done, audit_record_id=record_id)


def _give_back(revocation: Revocation, managed, inventory, access: AccessControl, vault: KeyVault):
    restored: list[str] = []
    if revocation.action is RevocationAction.DISABLE_KEY:
        for version in revocation.executed:
            vault.update_version(managed.ref, version, enabled=True)
            restored.append(version)
        enabled = {v.version for v in vault.list_versions(managed.ref) if v.enabled}
        return restored, [f"version {v} is still disabled" for v in revocation.executed if v not in enabled]
    removed = [PlannedAssignment.from_json(a) for a in revocation.plan.get("remove", [])]
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
    return restored, [f"assignment {a} is not listed" for a in restored if a.lower() not in listed]


# ---- the follow-up -------------------------------------------------------------------------------------------------
def check_revocation(
    message: object,
    *,
    inventory: Any,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    consumers: Consumers,
    dekstore: DekStore,
    revocations: Revocations,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    revocation_checks: WorkQueue,
    follow_up_delay: int,
) -> CheckOutcome:
    """After RBAC's propagation delay: is the revocation (or the restoration) in force? Grants and versions are read
    again, a shredded key is probed with an unwrap, and the consumers must report what the plan said they would.
    A consumer that does not yet is checked again later, up to MAX_CHECKS times, before the revocation fails."""
    if not isinstance(message, dict) or message.get("version") != MESSAGE_VERSION:
        raise MalformedMessage("version", f"a revocation check is a version {MESSAGE_VERSION} JSON object")
    phase = message.get("phase")
    if phase not in ("revocation", "restoration"):
        raise MalformedMessage("phase", "must be revocation or restoration")
    try:
        revocation = revocations.get(check_revocation_id(message.get("revocation_id")))
    except InvalidInput as exc:
        raise MalformedMessage("revocation_id", exc.reason) from None
    except NotFound:
        raise MalformedMessage("revocation_id", "names no revocation") from None
    wanted = (
        (RevocationState.EXECUTED, RevocationState.FAILED) if phase == "revocation" else (RevocationState.RESTORED,)
    )
    if revocation.state not in wanted or (phase == "restoration" and revocation.restoration.verified_at):
        return CheckOutcome(revocation.revocation_id, phase, "skipped", (f"state is {revocation.state.value}",))
    try:
        managed = inventory.key(revocation.key)
    except UnknownKey:
        raise MalformedMessage("revocation_id", f"its key {revocation.key} is no longer in the inventory") from None
    wrong, waiting = _in_force(
        revocation, managed, phase, access=access, roles=roles, vault=vault, consumers=consumers, dekstore=dekstore
    )
    now = clock.now()
    checks = revocation.checks + 1
    trigger = f"follow-up:{revocation.revocation_id}"
    if not wrong and waiting and checks < MAX_CHECKS:
        try:
            revocations.update(replace(revocation, checks=checks, updated_at=now))
        except PreconditionFailed:  # a duplicate delivery of this check got there first and rescheduled it
            return CheckOutcome(revocation.revocation_id, phase, "skipped", ("changed meanwhile",))
        revocation_checks.send(dict(message), delay_seconds=follow_up_delay)
        return CheckOutcome(revocation.revocation_id, phase, "rescheduled", tuple(waiting))
    problems = wrong + waiting
    if phase == "restoration":
        restoration = replace(
            revocation.restoration, verified_at=None if problems else now, failure="; ".join(problems)[:1000] or None
        )
        updated = replace(revocation, checks=checks, updated_at=now, restoration=restoration)
    elif problems:
        updated = revocation.moved(RevocationState.FAILED, now, checks=checks, failure="; ".join(problems)[:1000])
    else:
        updated = revocation.moved(RevocationState.VERIFIED, now, checks=checks, verified_at=now, failure=None)
    try:
        updated = revocations.update(updated)
    except PreconditionFailed:
        return CheckOutcome(revocation.revocation_id, phase, "skipped", ("changed meanwhile",))
    outcome = "failed" if problems else "verified"
    _audit(
        audit,
        clock,
        f"{phase}-check",
        trigger,
        managed.name,
        outcome,
        {"id": updated.revocation_id, "problems": problems},
    )
    if problems:
        alerts.publish(
            _alert(
                FAILED_ALERT,
                Severity.CRITICAL,
                updated,
                f"{phase} of {managed.name} is NOT in force: {'; '.join(problems)}",
                phase=phase,
            )
        )
    else:
        alerts.publish(
            _alert(
                VERIFIED_ALERT,
                Severity.INFO,
                updated,
                f"{phase} of {managed.name} verified in force after {checks} check(s)",
                phase=phase,
            )
        )
    return CheckOutcome(updated.revocation_id, phase, outcome, tuple(problems))


def _in_force(revocation, managed, phase, *, access, roles, vault, consumers, dekstore) -> tuple[list[str], list[str]]:
    """(what is wrong, what has not happened yet): a grant or version in the wrong state is wrong at once; a
    consumer that does not yet show the change may still be waiting for Key Vault to apply it."""
    revoked = phase == "revocation"
    wrong: list[str] = []
    if revocation.action is RevocationAction.DISABLE_KEY:
        versions = vault.list_versions(managed.ref)
        if revoked:
            wrong += [f"version {v.version} is enabled" for v in versions if v.enabled]
        else:
            enabled = {v.version for v in versions if v.enabled}
            wrong += [f"version {v} is disabled" for v in revocation.executed if v not in enabled]
        probe = _probe_unwrap(managed, dekstore, vault)
        if revoked and probe == "unwrapped":
            wrong.append("a registry DEK still unwraps under the key")
        if not revoked and probe == "refused":
            wrong.append("a registry DEK still does not unwrap under the key")
    else:
        held = _key_use_at_key(managed, revocation.principal_id, access, roles)
        if revoked and held:
            wrong += [f"{revocation.principal_id} holds key use again through {a.id}" for a in held]
        if not revoked and not held:
            wrong.append(f"{revocation.principal_id} holds no key use at {managed.name}")
    waiting: list[str] = []
    for rid, state in _consumer_states(managed, consumers).items():
        if consumer_affected(revocation.action, revocation.principal_id, managed, state):  # the one it really uses
            if state is None:
                waiting.append(f"{rid}: state could not be read")
            elif state.available == revoked:
                waiting.append(f"{rid} still reports itself {'available' if revoked else 'unavailable'}")
    return wrong, waiting


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
