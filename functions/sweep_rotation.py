"""The sweep's rotation step, the source of truth: events only make rotation faster. Key Vault raises events only for
versions created after a subscription exists, so a key nobody has touched since is found here or nowhere.

It rotates what is due (past `rotate_after`, within `notify_before` of expiry, or expired), paced under the vault's
HSM creation limit, and in enforce mode gives a key without the inventory's rotation policy that policy (validated
here first against the documented minimums, so a bad inventory never reaches the vault as a 400).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from functions.compliance.key_review import review_policy
from functions.revocation.common import notify_only_policy, rotates
from functions.rotation.imports import ask_for_import
from functions.rotation.rotate import RotationOutcome, RotationStatus, rotate_from, rotation_due
from shared.audit import AuditRecord
from shared.coordination.pacing import CreationPacer
from shared.errors import CmkError, KeyNotFound
from shared.ports import Alerts, AuditTrail, Claims, Clock, KeyVault, Revocations
from shared.rotation_policy import validate_rotation_policy
from shared.telemetry import NO_TELEMETRY, Telemetry


@dataclass(frozen=True)
class PolicyChange:
    key: str
    status: str  # "set", "differs" (audit mode: reported only), "failed"
    reason: str


def rotate_due_keys(
    *,
    inventory: Any,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    pacer: CreationPacer,
    telemetry: Telemetry = NO_TELEMETRY,
) -> list[RotationOutcome]:
    outcomes = []
    for managed in inventory.keys:
        try:
            current = vault.get_key(managed.ref)
        except KeyNotFound:
            continue  # reported by the compliance step; creating keys is an operator's decision
        except CmkError:
            continue  # unreadable now: the compliance step reports it, the next sweep retries
        if managed.rotation.imported:
            try:
                asked = ask_for_import(
                    managed, current, trigger="timer", claims=claims, alerts=alerts, audit=audit, clock=clock
                )
            except CmkError:
                continue  # claims or audit unreadable now: the next sweep asks
            if asked is not None:
                outcomes.append(
                    RotationOutcome(managed.name, RotationStatus.IMPORT_DUE, asked.message, "timer", current.version)
                )
            continue
        decision = rotation_due(managed, current, clock.now())
        if not decision.due:
            continue
        pacer.acquire(managed.ref.vault_host)
        outcomes.append(
            rotate_from(
                managed,
                current.version,
                trigger="timer",
                reason=decision.reason,
                emergency=decision.emergency,
                vault=vault,
                claims=claims,
                audit=audit,
                alerts=alerts,
                clock=clock,
                telemetry=telemetry,
            )
        )
    return outcomes


def _policy_drift(managed: Any, policy: Any) -> list[str]:
    """How the key's policy differs from the inventory's, as the compliance report judges it (one judgement)."""
    drift: list[str] = []
    review_policy(managed, policy, lambda code, message, **detail: drift.append(message))
    return drift


def sync_rotation_policies(
    *, inventory: Any, vault: KeyVault, audit: AuditTrail, clock: Clock, revocations: Revocations | None = None
) -> list[PolicyChange]:
    """Give each key the inventory's rotation policy when it has none or another (enforce mode); in audit mode only
    say which differ. The service adds a default Notify to a policy without one; that difference is not drift.

    A crypto-shredded key (the revocation ledger says so) keeps a Notify-only policy: giving it back its Rotate
    action would let Key Vault create a fresh, enabled version under an active shred. With the ledger unreadable, no
    policy is changed (it could be a shredded key's)."""
    changes = []
    try:
        shredded = {m.name for m in inventory.keys if revocations is not None and revocations.shredded(m.name)}
    except CmkError:
        return [PolicyChange(m.name, "failed", "the revocation ledger is unreadable") for m in inventory.keys]
    for managed in inventory.keys:
        try:
            policy = vault.get_rotation_policy(managed.ref)
        except CmkError:
            continue  # a missing key or an unreadable policy is the compliance step's finding
        if managed.name in shredded:
            drift = ["a crypto-shredded key's policy has a Rotate action"] if rotates(policy) else []
        else:
            drift = _policy_drift(managed, policy)
        if not drift:
            continue
        if not inventory.enforcing:
            changes.append(PolicyChange(managed.name, "differs", "; ".join(drift)))
            continue
        wanted = notify_only_policy(managed) if managed.name in shredded else managed.rotation.to_policy()
        try:
            validate_rotation_policy(wanted, imported=managed.rotation.imported)
            vault.set_rotation_policy(managed.ref, wanted)
        except CmkError as exc:
            changes.append(PolicyChange(managed.name, "failed", f"{exc.code}: {exc}"))
            continue
        audit.append(
            AuditRecord(
                uuid.uuid4().hex,
                clock.now(),
                "set-rotation-policy",
                "timer",
                managed.name,
                "policy-set",
                detail={"reason": "; ".join(drift), "expires_in": wanted.expires_in},
            )
        )
        changes.append(PolicyChange(managed.name, "set", "; ".join(drift)))
    return changes
