"""Compliance: what each managed key looks like in the vault, and every way it differs from the inventory.

Read-only by design: it backs `GET /api/keys` and the sweep's report, so it must be safe to call at any time, from
any number of instances, and must report a partial answer (a finding) rather than fail when one key cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared import roles
from shared.errors import CmkError, KeyNotFound
from shared.model import Finding, KeyVersion, RoleAssignment, RotationActionType, RotationPolicy, Severity
from shared.ports import AccessControl, Clock, KeyVault
from shared.rotation_policy import duration_to_timedelta

# Slack when comparing an expiry with what the policy would have set (clock skew, create latency).
EXPIRY_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class KeyReport:
    name: str
    vault: str
    service: str
    current: KeyVersion | None
    rotation_policy: RotationPolicy | None
    findings: tuple[Finding, ...]

    @property
    def compliant(self) -> bool:
        return not any(f.severity != Severity.INFO for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        cur = self.current
        return {
            "name": self.name,
            "vault": self.vault,
            "service": self.service,
            "key_id": cur.key_id if cur else None,
            "version": cur.version if cur else None,
            "enabled": cur.enabled if cur else None,
            "kty": cur.kty if cur else None,
            "size": cur.size if cur else None,
            "ops": list(cur.ops) if cur else None,
            "created": _iso(cur.created) if cur else None,
            "not_before": _iso(cur.not_before) if cur else None,
            "expires": _iso(cur.expires) if cur else None,
            "rotation_policy": _policy_json(self.rotation_policy),
            "compliant": self.compliant,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class ComplianceReport:
    mode: str
    generated_at: datetime
    keys: tuple[KeyReport, ...] = field(default_factory=tuple)

    @property
    def findings(self) -> list[Finding]:
        return [f for k in self.keys for f in k.findings]

    def to_json(self) -> dict[str, Any]:
        by_severity: dict[str, int] = {}
        for f in self.findings:
            by_severity[f.severity.value] = by_severity.get(f.severity.value, 0) + 1
        return {
            "mode": self.mode,
            "generated_at": _iso(self.generated_at),
            "summary": {
                "keys": len(self.keys),
                "compliant": sum(1 for k in self.keys if k.compliant),
                "findings": by_severity,
            },
            "keys": [k.to_json() for k in self.keys],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _policy_json(policy: RotationPolicy | None) -> dict | None:
    if policy is None:
        return None
    return {
        "expires_in": policy.expires_in,
        "lifetime_actions": [
            {
                "action": a.action.value,
                "time_after_create": a.time_after_create,
                "time_before_expiry": a.time_before_expiry,
            }
            for a in policy.actions
        ],
    }


def report_keys(*, inventory: Any, vault: KeyVault, access: AccessControl, clock: Clock) -> ComplianceReport:
    """The compliance report for every managed key, in inventory order."""
    return ComplianceReport(
        mode=inventory.mode,
        generated_at=clock.now(),
        keys=tuple(
            assess_key(key, inventory=inventory, vault=vault, access=access, clock=clock) for key in inventory.keys
        ),
    )


def assess_key(managed: Any, *, inventory: Any, vault: KeyVault, access: AccessControl, clock: Clock) -> KeyReport:
    name = managed.name
    findings: list[Finding] = []

    def add(code: str, severity: Severity, message: str, **detail: Any) -> None:
        findings.append(Finding(code, severity, name, message, detail))

    current: KeyVersion | None = None
    policy: RotationPolicy | None = None
    try:
        current = vault.get_key(managed.ref)
    except KeyNotFound:
        add("KeyMissing", Severity.CRITICAL, f"key {name} does not exist in vault {managed.vault.name}")
    except CmkError as exc:
        add("KeyUnreadable", Severity.HIGH, f"key {name} could not be read: {exc.code}", error=str(exc))

    if current is not None:
        findings_for_version(managed, current, clock.now(), add)
        try:
            policy = vault.get_rotation_policy(managed.ref)
        except CmkError as exc:
            add("RotationPolicyUnreadable", Severity.WARNING, f"rotation policy unreadable: {exc.code}")
        else:
            findings_for_policy(managed, policy, add)

    try:
        assignments = access.list_assignments(managed.scope)
    except CmkError as exc:
        add("AccessUnreadable", Severity.HIGH, f"role assignments could not be listed: {exc.code}", error=str(exc))
    else:
        findings_for_access(managed, inventory, assignments, add)

    return KeyReport(name, managed.vault.name, managed.service, current, policy, tuple(findings))


def findings_for_version(managed: Any, current: KeyVersion, now: datetime, add) -> None:
    if not current.enabled:
        add("KeyDisabled", Severity.CRITICAL, f"current version {current.version} is disabled", version=current.version)
    if current.kty != managed.kty:
        add(
            "KeyTypeMismatch", Severity.HIGH, f"kty is {current.kty}, inventory wants {managed.kty}", actual=current.kty
        )
    if current.size is not None and current.size != managed.size:
        add("KeySizeMismatch", Severity.HIGH, f"size is {current.size}, inventory wants {managed.size}")
    extra = sorted(set(current.ops) - set(managed.ops))
    missing = sorted(set(managed.ops) - set(current.ops))
    if extra:
        add("KeyOpsExcess", Severity.HIGH, f"key allows operations beyond {sorted(managed.ops)}: {extra}", ops=extra)
    if missing:
        add("KeyOpsMissing", Severity.HIGH, f"key lacks operations {missing}", ops=missing)

    rotation = managed.rotation
    expire_after = rotation.expire_after.delta
    notify_before = rotation.notify_before.delta
    rotate_after = rotation.rotate_after.delta
    if current.expires is None:
        add("KeyNoExpiry", Severity.WARNING, "current version has no expiry date")
    else:
        if current.expires <= now:
            add("KeyExpired", Severity.CRITICAL, f"current version expired at {_iso(current.expires)}")
        elif current.expires - now <= notify_before:
            add("KeyNearExpiry", Severity.WARNING, f"current version expires at {_iso(current.expires)}")
        if current.created and current.expires - current.created > expire_after + EXPIRY_TOLERANCE:
            add(
                "KeyExpiryTooLate",
                Severity.WARNING,
                f"expiry {_iso(current.expires)} is later than {rotation.expire_after} after creation",
            )
    if current.created and now - current.created > rotate_after + EXPIRY_TOLERANCE:
        add(
            "RotationOverdue",
            Severity.HIGH,
            f"current version was created {_iso(current.created)}, rotation is due every {rotation.rotate_after}",
        )


def findings_for_policy(managed: Any, policy: RotationPolicy | None, add) -> None:
    rotation = managed.rotation
    rotate = [a for a in (policy.actions if policy else ()) if a.action == RotationActionType.ROTATE]
    notify = [a for a in (policy.actions if policy else ()) if a.action == RotationActionType.NOTIFY]
    if not rotate:
        add("RotationPolicyMissing", Severity.WARNING, "no automatic rotation in the key's rotation policy")
        return
    wanted = {
        "expires_in": rotation.expire_after.delta,
        "rotate_after": rotation.rotate_after.delta,
        "notify_before": rotation.notify_before.delta,
    }
    actual_rotate = rotate[0]
    got_expiry = duration_to_timedelta(policy.expires_in) if policy and policy.expires_in else None
    if got_expiry != wanted["expires_in"]:
        add(
            "RotationPolicyMismatch",
            Severity.WARNING,
            f"policy expiresIn is {policy.expires_in if policy else None}, inventory wants {rotation.expire_after}",
            field="expires_in",
        )
    if actual_rotate.time_after_create:
        got_rotate = duration_to_timedelta(actual_rotate.time_after_create)
    else:
        got_rotate = (got_expiry or wanted["expires_in"]) - duration_to_timedelta(actual_rotate.time_before_expiry)
    if got_rotate != wanted["rotate_after"]:
        add(
            "RotationPolicyMismatch",
            Severity.WARNING,
            f"policy rotates after {got_rotate.days} days, inventory wants {rotation.rotate_after}",
            field="rotate_after",
        )
    got_notify = (
        duration_to_timedelta(notify[0].time_before_expiry) if notify and notify[0].time_before_expiry else None
    )
    if got_notify != wanted["notify_before"]:
        add(
            "RotationPolicyMismatch",
            Severity.WARNING,
            f"policy notifies {got_notify.days if got_notify else 'never'} "
            f"days before expiry, inventory wants {rotation.notify_before}",
            field="notify_before",
        )


def findings_for_access(managed: Any, inventory: Any, assignments: list[RoleAssignment], add) -> None:
    identity = managed.identity.principal_id.lower()
    break_glass = {p.principal_id.lower() for p in inventory.break_glass}
    app_identity = (inventory.app_identity or "").lower()
    key_scope = managed.scope.rstrip("/").lower()
    consumer_ok = False
    for a in assignments:
        principal = a.principal_id.lower()
        role = roles.role_by_id(a.role_definition_id)
        role_name = role.name if role else f"custom role {a.role_guid}"
        inherited = a.scope.rstrip("/").lower() != key_scope
        detail = {
            "principal_id": a.principal_id,
            "role": role_name,
            "scope": a.scope,
            "assignment_id": a.id,
            "inherited": inherited,
        }
        if not roles.grants_key_use(a.role_definition_id):
            continue
        if principal == identity:
            if role is not None and role.grants("wrap") and role.grants("unwrap"):
                consumer_ok = True
            if role is None or role.guid != managed.role.guid:
                add(
                    "AccessTooBroad",
                    Severity.WARNING,
                    f"{managed.service} identity holds {role_name}, inventory wants {managed.role.name}",
                    **detail,
                )
            elif inherited:
                add(
                    "AccessTooBroad",
                    Severity.WARNING,
                    f"{managed.service} identity's grant is at {a.scope}, wider than the key: it reaches other keys",
                    **detail,
                )
        elif principal == app_identity:
            continue
        elif principal in break_glass:
            add(
                "BreakGlassAccess", Severity.INFO, f"break-glass principal {a.principal_id} holds {role_name}", **detail
            )
        else:
            add(
                "AccessExtra",
                Severity.HIGH,
                f"principal {a.principal_id} holds {role_name} on key {managed.name} but is not its consumer",
                **detail,
            )
    if not consumer_ok:
        add(
            "AccessMissing",
            Severity.CRITICAL,
            f"{managed.service} identity {managed.identity.principal_id} cannot wrap/unwrap with key {managed.name}",
            principal_id=managed.identity.principal_id,
        )
