"""Compliance: what each managed key looks like in the vault, and every way it differs from the inventory.

Read-only by design: it backs `GET /api/keys` and the sweep's report, so it must be safe to call at any time, from
any number of instances, and must report a partial answer (a finding) rather than fail when one key, one vault or
one role cannot be read. Each vault is read once per report and each role definition once per process (RoleCatalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from functions.access.review import grants_from_access_policies, grants_from_assignments, review_grants
from functions.compliance.hsm_review import review_role_managers, review_version_cap
from functions.compliance.key_review import review_imported_versions, review_policy, review_version
from functions.compliance.vault_review import review_vault
from functions.consumers.identities import read_consumer_states
from functions.consumers.review import review_consumers
from shared.errors import CmkError, KeyNotFound
from shared.findings import FindingCode, finding
from shared.model import Finding, KeyVersion, RotationPolicy, Severity
from shared.ports import AccessControl, Clock, Consumers, KeyVault, Revocations, RoleDefinitions, Vaults
from shared.timestamps import iso_utc
from shared.vault_settings import VaultSettings


@dataclass(frozen=True)
class KeyReport:
    name: str
    vault: str
    service: str
    current: KeyVersion | None
    rotation_policy: RotationPolicy | None
    findings: tuple[Finding, ...]
    origin: str = "generated"  # or "imported": its versions come from the customer's HSM, never from the app

    @property
    def compliant(self) -> bool:
        return not any(f.severity != Severity.INFO for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        cur = self.current
        return {
            "name": self.name,
            "vault": self.vault,
            "service": self.service,
            "origin": self.origin,
            "key_id": cur.key_id if cur else None,
            "version": cur.version if cur else None,
            "enabled": cur.enabled if cur else None,
            "kty": cur.kty if cur else None,
            "size": cur.size if cur else None,
            "ops": list(cur.ops) if cur else None,
            "created": iso_utc(cur.created) if cur else None,
            "not_before": iso_utc(cur.not_before) if cur else None,
            "expires": iso_utc(cur.expires) if cur else None,
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
            "generated_at": iso_utc(self.generated_at),
            "summary": {
                "keys": len(self.keys),
                "compliant": sum(1 for k in self.keys if k.compliant),
                "findings": by_severity,
            },
            "keys": [k.to_json() for k in self.keys],
        }


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


def report_keys(
    *,
    inventory: Any,
    vault: KeyVault,
    access: AccessControl,
    roles: RoleDefinitions,
    vault_settings: Vaults,
    clock: Clock,
    revocations: Revocations | None = None,
    consumers: Consumers | None = None,
) -> ComplianceReport:
    """The compliance report for every managed key, in inventory order. With the revocation ledger, what an
    operator revoked on purpose is reported as such (a warning: known and intended), not as critical drift. With
    the consumers, each Azure consumer's identity, health and version are part of its key's report."""
    settings: dict[str, VaultSettings | CmkError] = {}
    for v in inventory.vaults:
        try:
            settings[v.resource_id] = vault_settings.get_vault(v.resource_id)
        except CmkError as exc:
            settings[v.resource_id] = exc
    reports = tuple(
        assess_key(
            key,
            inventory=inventory,
            vault=vault,
            access=access,
            roles=roles,
            settings=settings[key.vault.resource_id],
            clock=clock,
            consumers=consumers,
        )
        for key in inventory.keys
    )
    if revocations is not None:
        reports = tuple(_sanctioned(r, inventory.key(f"{r.vault}/{r.name}"), revocations, vault) for r in reports)
    return ComplianceReport(mode=inventory.mode, generated_at=clock.now(), keys=reports)


# What a revocation in force causes in a consumer, on purpose.
CUT_OFF = frozenset(
    {FindingCode.CONSUMER_INACCESSIBLE, FindingCode.CONSUMER_KEY_ROTATION_ERROR, FindingCode.CONSUMER_VERSION_LAG}
)


def _revoked_identity(managed: Any, f: Finding, revoked: set[str]) -> bool:
    """The consumer's identity (the one it really uses, else the inventory's) is revoked from the key."""
    used = {p.lower() for p in f.detail.get("identities") or ()} or {managed.identity.principal_id.lower()}
    return bool(used & {r.lower() for r in revoked})


def _sanctioned(report: KeyReport, managed: Any, revocations: Revocations, vault: KeyVault) -> KeyReport:
    """AccessMissing of a revoked consumer and KeyDisabled of a shredded key are the revocation working; so is a
    consumer cut off (Inaccessible, failing rotation, left behind) when its key is shredded or its identity revoked.
    An enabled version of a shredded key is the shred undone (ShreddedKeyEnabled)."""
    try:
        revoked = revocations.revoked(managed.name)
        shredded = revocations.shredded(managed.name)
    except CmkError:
        return report  # the ledger unreadable: report what is seen, at its full severity
    findings = []
    for f in report.findings:
        if f.code == FindingCode.ACCESS_MISSING and managed.identity.principal_id in revoked:
            f = finding(FindingCode.ACCESS_REVOKED, managed.name, f.message + " (revoked on purpose)", **f.detail)
        elif shredded and (f.code == FindingCode.KEY_DISABLED or f.code in CUT_OFF):
            f = finding(FindingCode.KEY_SHREDDED, managed.name, f.message + f" (revocation {shredded})", **f.detail)
        elif f.code in CUT_OFF and _revoked_identity(managed, f, revoked):
            f = finding(FindingCode.ACCESS_REVOKED, managed.name, f.message + " (revoked on purpose)", **f.detail)
        findings.append(f)
    if shredded:
        findings += _shred_undone(managed, shredded, vault)
    return replace(report, findings=tuple(findings))


def _shred_undone(managed: Any, shredded: str, vault: KeyVault) -> list[Finding]:
    try:
        enabled = sorted(v.version for v in vault.list_versions(managed.ref) if v.enabled)
    except CmkError:
        return []  # unreadable: the key's own findings say so
    if not enabled:
        return []
    message = f"version(s) {', '.join(enabled)} enabled under the crypto-shred of revocation {shredded}"
    return [finding(FindingCode.SHREDDED_KEY_ENABLED, managed.name, message, versions=enabled, revocation=shredded)]


def assess_key(
    managed: Any,
    *,
    inventory: Any,
    vault: KeyVault,
    access: AccessControl,
    roles: RoleDefinitions,
    settings: VaultSettings | CmkError,
    clock: Clock,
    consumers: Consumers | None = None,
) -> KeyReport:
    name = managed.name
    findings: list[Finding] = []

    def add(code: FindingCode, message: str, **detail: Any) -> None:
        findings.append(finding(code, name, message, **detail))

    current: KeyVersion | None = None
    policy: RotationPolicy | None = None
    try:
        current = vault.get_key(managed.ref)
    except KeyNotFound:
        add(FindingCode.KEY_MISSING, f"key {name} does not exist in vault {managed.vault.name}")
    except CmkError as exc:
        add(FindingCode.KEY_UNREADABLE, f"key {name} could not be read: {exc.code}", error=str(exc))

    if current is not None:
        review_version(managed, current, clock.now(), add)
        try:
            policy = vault.get_rotation_policy(managed.ref)
        except CmkError as exc:
            add(FindingCode.ROTATION_POLICY_UNREADABLE, f"rotation policy unreadable: {exc.code}")
        else:
            review_policy(managed, policy, add)
        if managed.rotation.imported:
            try:  # every version, not only the current: a generated one may wait behind an imported current one
                review_imported_versions(managed, vault.list_versions(managed.ref), add)
            except CmkError as exc:
                message = f"versions of key {name} could not be listed: {exc.code}"
                add(FindingCode.KEY_UNREADABLE, message, error=str(exc))

    if isinstance(settings, CmkError):
        add(
            FindingCode.VAULT_UNREADABLE,
            f"vault {managed.vault.name} could not be read through ARM: {settings.code}; access is judged from "
            "role assignments as if it used RBAC",
            error=str(settings),
        )
    else:
        review_vault(managed.vault.name, settings, add)

    if isinstance(settings, VaultSettings) and not settings.rbac_authorization:
        review_grants(managed, inventory, grants_from_access_policies(managed, settings, inventory), add)
    else:
        try:
            assignments = access.list_assignments(managed.scope)
        except CmkError as exc:
            add(FindingCode.ACCESS_UNREADABLE, f"role assignments could not be listed: {exc.code}", error=str(exc))
        else:
            review_grants(managed, inventory, grants_from_assignments(managed, assignments, roles, add), add)
            if managed.vault.managed_hsm:
                review_role_managers(managed, inventory, assignments, add)
    if managed.vault.managed_hsm and current is not None:
        review_version_cap(managed, vault, add)

    if consumers is not None:
        review_consumers(managed, read_consumer_states(managed, consumers), current, clock.now(), add)
    origin = str(getattr(managed, "origin", "generated"))
    return KeyReport(name, managed.vault.name, managed.service, current, policy, tuple(findings), origin)
