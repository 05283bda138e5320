"""The sweep's watch over revocations in force: a verified revocation stays verified only as long as nothing gives
the access back. A revoked principal that regained key use (a new grant at the key, one inherited from above, a
group grant it may be in) or a shredded key with an enabled version (or a rotation policy that would make one) is
alerted on every sweep until it is dealt with, and audited."""

from __future__ import annotations

from typing import Any

from functions.revocation.common import (
    audit_record,
    describe_other_key_use,
    key_use_at_key,
    other_key_use,
    revocation_alert,
    rotates,
    send_alert,
)
from shared.errors import CmkError
from shared.inventory.model import UnknownKey
from shared.model import Severity
from shared.ports import AccessControl, Alerts, AuditTrail, Clock, KeyVault, Revocations, RoleDefinitions
from shared.revocation import Revocation, RevocationAction, RevocationState

NOT_IN_FORCE_ALERT = "CmkGuardian.Revocation.NotInForce"
WATCHED = (RevocationState.EXECUTED, RevocationState.VERIFIED)  # failed ones alerted already; restoring: undone


def watch_revocations(
    *,
    inventory: Any,
    revocations: Revocations,
    access: AccessControl,
    roles: RoleDefinitions,
    vault: KeyVault,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
) -> tuple[str, ...]:
    """The ids of the revocations in force whose access came back, each alerted (critical) and audited."""
    try:
        active = revocations.active()
    except CmkError:
        return ()  # the compliance report and the next sweep see the ledger unreadable
    broken: list[str] = []
    for revocation in active:
        if revocation.state not in WATCHED:
            continue
        try:
            managed = inventory.key(revocation.key)
            problems = _undone(revocation, managed, inventory, access, roles, vault)
        except (UnknownKey, CmkError):
            continue  # a key no longer managed, or unreadable now: the report says so
        if not problems:
            continue
        broken.append(revocation.revocation_id)
        detail = {"id": revocation.revocation_id, "problems": problems}
        audit_record(audit, clock, "revocation-watch", "timer", managed.name, "not-in-force", detail)
        message = f"revocation of {managed.name} is NO LONGER in force: {'; '.join(problems)}"
        alert = revocation_alert(NOT_IN_FORCE_ALERT, Severity.CRITICAL, revocation, message, problems=len(problems))
        send_alert(alert, alerts=alerts, audit=audit, clock=clock)
    return tuple(broken)


def _undone(revocation: Revocation, managed: Any, inventory: Any, access, roles, vault) -> list[str]:
    if revocation.action is RevocationAction.DISABLE_KEY:
        problems = [f"version {v.version} is enabled" for v in vault.list_versions(managed.ref) if v.enabled]
        if rotates(vault.get_rotation_policy(managed.ref)):
            problems.append("the key's rotation policy would create a fresh, enabled version")
        return problems
    principal = revocation.principal_id or ""
    problems = [
        f"{principal} holds key use again through {a.id}" for a in key_use_at_key(managed, principal, access, roles)
    ]
    others = other_key_use(managed, principal, inventory, access, roles)
    return problems + [describe_other_key_use(principal, a) for a in others]
