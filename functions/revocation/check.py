"""The follow-up that verifies a revocation (or a restoration) is in force, once Key Vault has applied it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from functions.revocation.common import (
    FAILED_ALERT,
    MAX_CHECKS,
    MESSAGE_VERSION,
    VERIFIED_ALERT,
    CheckOutcome,
    audit_record,
    consumer_states,
    describe_other_key_use,
    key_use_at_key,
    other_key_use,
    probe_unwrap,
    revocation_alert,
    rotates,
    send_alert,
)
from functions.revocation.plan import consumer_affected
from shared.errors import (
    InvalidInput,
    MalformedMessage,
    NotFound,
    PreconditionFailed,
)
from shared.inventory.model import UnknownKey
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
    WorkQueue,
)
from shared.revocation import (
    Revocation,
    RevocationAction,
    RevocationState,
    check_revocation_id,
)
from shared.telemetry import NO_TELEMETRY, Telemetry, names
from shared.timestamps import iso_utc

# How long after Key Vault applies a change a consumer may take to report it: a MySQL flexible server denies
# connections and reports Inaccessible within about 10 minutes of losing its key (and is back as long after); a disk
# encryption set is given as long. A DEK table is the app's own: it reads the vault directly.
CONSUMER_GRACE = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: timedelta(minutes=10),
    ConsumerKind.DISK_ENCRYPTION_SET: timedelta(minutes=10),
}


def settles_at(revocation: Revocation, managed: Any, phase: str, rbac_propagation: timedelta) -> datetime | None:
    """When, on the app's clock, the act must be in force if it ever will be: when it was done, plus the RBAC
    propagation time, plus the longest grace of the consumers it should change."""
    if phase == "revocation":
        done = revocation.executed_at or revocation.updated_at
    else:
        restoration = revocation.restoration
        done = (restoration.restored_at or restoration.requested_at) if restoration else revocation.updated_at
    if done is None:
        return None
    # Any consumer may be the one that reaches the key as the revoked principal (the identity it really uses may not
    # be the inventory's), so its grace counts whenever the key has consumers: it only delays a verdict of failure.
    graces = [CONSUMER_GRACE.get(c.kind, timedelta(0)) for c in managed.consumers if c.resource_id is not None]
    return done + rbac_propagation + max(graces, default=timedelta(0))


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
    rbac_propagation: timedelta,
    telemetry: Telemetry = NO_TELEMETRY,
) -> CheckOutcome:
    """After RBAC's propagation delay: is the revocation (or the restoration) in force? Grants and versions are read
    again, a shredded key is probed with an unwrap, and the consumers must report what the plan said they would.

    Azure applies a role change up to `rbac_propagation` after it was made (on the app's clock), and a consumer
    reports it up to its CONSUMER_GRACE later: a check that finds the act not yet in force before then looks again
    after `follow_up_delay` real seconds without counting an attempt. After then, anything wrong fails it at once,
    and a consumer that does not yet show the change is checked again, up to MAX_CHECKS times, before it fails."""
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
        revocation,
        managed,
        phase,
        inventory=inventory,
        access=access,
        roles=roles,
        vault=vault,
        consumers=consumers,
        dekstore=dekstore,
    )
    now = clock.now()
    settled = settles_at(revocation, managed, phase, rbac_propagation)
    if (wrong or waiting) and settled is not None and now < settled:
        try:  # ETag-guarded, so that of two deliveries of this check only one keeps looking
            revocations.update(replace(revocation, updated_at=now))
        except PreconditionFailed:
            return CheckOutcome(revocation.revocation_id, phase, "skipped", ("changed meanwhile",))
        revocation_checks.send(dict(message), delay_seconds=follow_up_delay)
        pending = f"Azure may take until {iso_utc(settled)} to apply it"
        return CheckOutcome(revocation.revocation_id, phase, "rescheduled", (pending, *wrong, *waiting))
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
    audit_record(
        audit,
        clock,
        f"{phase}-check",
        trigger,
        managed.name,
        outcome,
        {"id": updated.revocation_id, "problems": problems},
    )
    consumer = updated.service or updated.principal_id or "every consumer"
    event = names.REVOCATION_VERIFIED if phase == "revocation" else names.REVOCATION_RESTORED
    telemetry.event(event, key=managed.name, consumer=consumer, outcome=outcome)
    if problems:
        send_alert(
            revocation_alert(
                FAILED_ALERT,
                Severity.CRITICAL,
                updated,
                f"{phase} of {managed.name} is NOT in force: {'; '.join(problems)}",
                phase=phase,
            ),
            alerts=alerts,
            audit=audit,
            clock=clock,
        )
    else:
        send_alert(
            revocation_alert(
                VERIFIED_ALERT,
                Severity.INFO,
                updated,
                f"{phase} of {managed.name} verified in force after {checks} check(s)",
                phase=phase,
            ),
            alerts=alerts,
            audit=audit,
            clock=clock,
        )
    return CheckOutcome(updated.revocation_id, phase, outcome, tuple(problems))


def _in_force(
    revocation, managed, phase, *, inventory, access, roles, vault, consumers, dekstore
) -> tuple[list[str], list[str]]:
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
        if revoked and rotates(vault.get_rotation_policy(managed.ref)):
            wrong.append("the key's rotation policy would create a fresh, enabled version (it has a Rotate action)")
        probe = probe_unwrap(managed, dekstore, vault)
        if revoked and probe == "unwrapped":
            wrong.append("a registry DEK still unwraps under the key")
        if not revoked and probe == "refused":
            wrong.append("a registry DEK still does not unwrap under the key")
    else:
        held = key_use_at_key(managed, revocation.principal_id, access, roles)
        if revoked and held:
            wrong += [f"{revocation.principal_id} holds key use again through {a.id}" for a in held]
        if revoked:
            others = other_key_use(managed, revocation.principal_id, inventory, access, roles)
            wrong += [describe_other_key_use(revocation.principal_id, a) for a in others]
        if not revoked and not held:
            wrong.append(f"{revocation.principal_id} holds no key use at {managed.name}")
    waiting: list[str] = []
    for rid, state in consumer_states(managed, consumers).items():
        if consumer_affected(revocation.action, revocation.principal_id, managed, state):  # the one it really uses
            if state is None:
                waiting.append(f"{rid}: state could not be read")
            elif state.available == revoked:
                waiting.append(f"{rid} still reports itself {'available' if revoked else 'unavailable'}")
    return wrong, waiting
