"""Least privilege, kept: reconcile who can use each key on every access change, and never lock a consumer out.

`reconcile_key` reads the key's assignments (and their role definitions), the vault's permission model and the key's
versions, asks `plan_access` what must change, then, in enforce mode, carries the plan out step by step, verifying
each: a consumer's minimal grant is created and seen before any broader grant of its goes. In audit mode the same
plan is reported. ARM applies RBAC changes after up to about ten minutes, so every remediation schedules a follow-up
check through the queue that re-reads the assignments and probes the app's own access; a removal the consumer must
outlast (its broader grant, a group's grant) is deferred until its minimal grant has existed for that long, and the
follow-up re-queues itself until then. The identities the key's consumers really use (ARM's, not the inventory's)
are never stripped of key use, and the revocation ledger is read again right before every grant (review M1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from functions.access.plan import AccessPlan, GrantRole, RemoveAssignment, Report, plan_access
from functions.access.steps import execute, record
from functions.consumers.identities import read_consumer_states
from shared.errors import CmkError, MalformedMessage, PreconditionFailed
from shared.inventory.model import UnknownKey
from shared.model import Alert, RoleAssignment, Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Claims,
    Clock,
    Consumers,
    KeyVault,
    Revocations,
    RoleDefinitions,
    Vaults,
    WorkQueue,
)
from shared.roles.builtin import role_definition_id
from shared.roles.catalog import definitions_for
from shared.telemetry import NO_TELEMETRY, Telemetry

VIOLATION_ALERT = "CmkGuardian.Access.Violation"
REMEDIATED_ALERT = "CmkGuardian.Access.Remediated"
CONSUMER_LOST_ALERT = "CmkGuardian.Access.ConsumerAccessLost"
FOLLOW_UP_SECONDS = 600  # RBAC changes reach Key Vault after up to about 10 minutes
RBAC_PROPAGATION = timedelta(seconds=600)
FIRST_SEEN_KEPT = timedelta(days=3650)  # how long the app remembers when it first saw a grant with no creation time


@dataclass(frozen=True)
class ReconcileOutcome:
    key: str
    status: str  # "compliant", "reported", "remediated", "partial", "deferred" (only waiting), "unreadable"
    plan: AccessPlan | None = None
    executed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    alerts: tuple[Alert, ...] = field(default=(), compare=False)
    deferred: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "steps": [
                type(s).__name__ + ": " + getattr(s, "reason", "") for s in (self.plan.steps if self.plan else ())
            ],
            "executed": list(self.executed),
            "skipped": list(self.skipped),
            "deferred": list(self.deferred),
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
    consumers: Consumers,
    rbac_propagation: timedelta = RBAC_PROPAGATION,
    follow_up_delay: int = FOLLOW_UP_SECONDS,
    claims: Claims | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> ReconcileOutcome:
    try:
        settings = vault_settings.get_vault(managed.vault.resource_id)
        assignments = [] if not settings.rbac_authorization else access.list_assignments(managed.scope)
        assignments = with_first_seen(assignments, claims, clock)
        definitions = definitions_for(assignments, roles)  # an unreadable role: plan_access leaves its grant alone
        versions = vault.list_versions(managed.ref) if all_versions else [vault.get_key(managed.ref)]
        revoked = revocations.revoked(managed.name)
    except CmkError as exc:
        return ReconcileOutcome(managed.name, "unreadable", skipped=(f"{exc.code}: {exc}",))
    states = read_consumer_states(managed, consumers)
    subscription = managed.vault.subscription_id
    plan = plan_access(
        managed,
        assignments=assignments,
        definitions=definitions,
        inventory=inventory,
        revoked=revoked,
        versions=versions,
        minimal_role_id=role_definition_id(subscription, managed.role),
        now=clock.now(),
        propagation=rbac_propagation,
        protected=states.others,
        attached=states.attached,
    )
    if states.uncertain:
        plan = _remove_nothing(plan, states.uncertain)
    if not settings.rbac_authorization:
        plan = AccessPlan(
            managed.name,
            (*plan.steps, Report(None, "the vault authorizes from access policies: nothing is changed there")),
        )
    if not plan.steps:
        return ReconcileOutcome(managed.name, "compliant", plan)
    # A follow-up that re-queued itself and still has nothing to change but waits: the first pass alerted already.
    waiting_again = trigger.startswith("follow-up:") and not plan.changes
    sent = [] if waiting_again else [_violation_alert(managed, plan, trigger, inventory.enforcing)]
    lost = [s for s in plan.steps if isinstance(s, GrantRole)]
    if not inventory.enforcing or not settings.rbac_authorization:
        if lost:
            sent.append(_consumer_lost_alert(managed, restored=False))
        for alert in sent:
            alerts.publish(alert)
        record(audit, managed, trigger, clock, "access-report", "reported", {"steps": _describe(plan)})
        return ReconcileOutcome(managed.name, "reported", plan, alerts=tuple(sent))

    executed, skipped = execute(
        managed, plan, trigger=trigger, access=access, vault=vault, revocations=revocations, audit=audit, clock=clock,
        inventory=inventory, telemetry=telemetry,
    )  # fmt: skip
    deferred = tuple(f"RemoveAssignment {d.step.assignment_id}: {d.reason}" for d in plan.deferred)
    consumer_ok = not any(s.startswith("GrantRole") for s in skipped)
    if lost:
        sent.append(_consumer_lost_alert(managed, restored=consumer_ok))
    if executed:
        sent.append(_remediated_alert(managed, executed, trigger))
    # A deferral waiting on a grant's age needs another look once it is old enough; one waiting on a grant that
    # failed waits for the next sweep instead (re-queuing every few seconds would not make the grant work).
    waiting = any(d.until is not None for d in plan.deferred)
    if (executed or waiting) and access_checks is not None:
        access_checks.send({"version": 1, "key": managed.name, "trigger": trigger}, delay_seconds=follow_up_delay)
    for alert in sent:
        alerts.publish(alert)
    if executed or skipped:
        status = "remediated" if executed and not skipped else "partial"
    else:
        status = "deferred" if deferred else "reported"
    return ReconcileOutcome(managed.name, status, plan, tuple(executed), tuple(skipped), tuple(sent), deferred)


def with_first_seen(assignments: list[RoleAssignment], claims: Claims | None, clock: Clock) -> list[RoleAssignment]:
    """Assignments that carry no creation time (a Managed HSM's local RBAC reports none) get the time the app first
    saw them, kept as a claim: a removal that must outlast RBAC propagation then waits from that moment, never
    forever. First sight is never earlier than creation, so the wait is never shorter than it should be."""
    if claims is None or all(a.created_on is not None for a in assignments):
        return assignments
    out = []
    for a in assignments:
        if a.created_on is None:
            digest = hashlib.sha256(a.id.lower().encode()).hexdigest()[:40]
            result = claims.claim(f"grant-seen|{digest}", uuid.uuid4().hex, now=clock.now(), ttl=FIRST_SEEN_KEPT)
            if result.taken:
                with contextlib.suppress(PreconditionFailed):
                    claims.complete(result.claim, {"assignment_id": a.id[:300]})
            a = dataclasses.replace(a, created_on=result.claim.taken_at)
        out.append(a)
    return out


def _remove_nothing(plan: AccessPlan, unreadable: tuple[tuple[str, str], ...]) -> AccessPlan:
    """A consumer whose identity cannot be read may be using any grant: report removals instead of making them."""
    why = "; ".join(f"{resource}: {error}" for resource, error in unreadable)
    steps = tuple(
        Report(s.principal_id, f"{s.reason}; not removed: a consumer's identity could not be read ({why})",
               s.assignment_id)
        if isinstance(s, RemoveAssignment)
        else s
        for s in plan.steps
    )  # fmt: skip
    return replace(plan, steps=steps)


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


def _follow_up_trigger(trigger: object) -> str:
    """What started the chain of checks, named once however often the check re-queues itself."""
    text = trigger if isinstance(trigger, str) else ""
    return (text if text.startswith("follow-up:") else f"follow-up:{text}")[:200]


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
    access_checks: WorkQueue | None = None,
    consumers: Consumers,
    rbac_propagation: timedelta = RBAC_PROPAGATION,
    follow_up_delay: int = FOLLOW_UP_SECONDS,
    claims: Claims | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> ReconcileOutcome:
    """After a remediation, once Key Vault may have applied it: probe the app's own access with a real read, then
    reconcile again from what ARM lists now. A removal still waiting for the consumer's grant to be old enough (on
    the app's clock) re-queues this check with the short delay: waiting is not a failure."""
    ports = {name: value for name, value in locals().items() if name != "message"}
    managed = key_named(message, inventory, "a follow-up check names the inventory key it checks")
    vault.get_key(managed.ref)  # the probe: raises (and the host retries) if the app itself lost its access
    return reconcile_key(managed, trigger=_follow_up_trigger(message.get("trigger")), **ports)


def key_named(message: object, inventory: Any, what: str) -> Any:
    """The managed key a queue message names; a message no retry can fix is refused naming its field."""
    name = message.get("key") if isinstance(message, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        raise MalformedMessage("key", what)
    try:
        return inventory.key(name)
    except UnknownKey:
        raise MalformedMessage("key", "not a managed key (no longer in the inventory?)") from None
