"""Key rotation, exactly once per due version, whoever notices first: an event, the sweep, an operator, or the vault.

One decision (`rotation_due`) judges every trigger from the key's state, and one act (`rotate_from`) carries it out
under a claim keyed on (key, version it rotates from): the event, the sweep, an operator and a second instance race for
the same claim and exactly one creates the new version. A version the vault created itself (its own rotation policy)
counts as the rotation. The old version is never disabled or expired here: consumers move first (re-wrap).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.compliance.key_review import EXPIRY_TOLERANCE, forbids_expiry
from shared.audit import AuditRecord
from shared.coordination.claims import ClaimStatus, rotation_claim_id
from shared.errors import CmkError, PreconditionFailed
from shared.model import Alert, KeyVersion, RotationActionType, RotationPolicy, Severity
from shared.ports import Alerts, AuditTrail, Claims, Clock, KeyVault
from shared.telemetry import NO_TELEMETRY, Telemetry, names

# A rotation takes seconds; a holder silent for this long has crashed, and the next trigger takes over.
CLAIM_TTL = timedelta(minutes=10)

ROTATED_ALERT = "CmkGuardian.Key.Rotated"
FAILED_ALERT = "CmkGuardian.Key.RotationFailed"
EXPIRED_ALERT = "CmkGuardian.Key.Expired"
SUPERSEDED_ALERT = "CmkGuardian.Key.NearExpirySuperseded"


class RotationStatus(StrEnum):
    ROTATED = "rotated"  # this call created the new version
    ALREADY_ROTATED = "already-rotated"  # someone (another trigger, or the vault itself) did it first
    IN_PROGRESS = "in-progress"  # another holder is rotating this version right now
    SUPERSEDED = "superseded"  # the version the trigger names is no longer current
    NOT_DUE = "not-due"
    REFUSED = "refused"  # the current version is disabled (crypto-shredded): a new one would bring the key back
    IMPORT_DUE = "import-due"  # an imported key: its next version must come from the customer's HSM (alerted)
    FAILED = "failed"


@dataclass(frozen=True)
class RotationDecision:
    due: bool
    reason: str
    emergency: bool = False


@dataclass(frozen=True)
class RotationOutcome:
    key: str
    status: RotationStatus
    reason: str
    trigger: str
    from_version: str | None = None
    to_version: str | None = None
    audit_id: str | None = None
    alert: Alert | None = field(default=None, compare=False)
    error: CmkError | None = field(default=None, compare=False)  # FAILED: what went wrong, for the trigger to judge

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status.value,
            "reason": self.reason,
            "trigger": self.trigger,
            "old_version": self.from_version,
            "new_version": self.to_version,
            "audit_id": self.audit_id,
        }


DISABLED_REASON = (
    "current version {version} is disabled (crypto-shredded, or disabled by an operator): a new version would "
    "bring the key back into use; restore it first"
)


IMPORTED_REASON = (
    "{name} is imported from an on-premises HSM: the app never makes its versions; it asks for the import "
    "(CmkGuardian.Key.ImportDue)"
)


def rotation_due(managed: Any, current: KeyVersion | None, now: datetime) -> RotationDecision:
    """Whether the key's current version must be replaced now, judged from the version alone (the sweep's rule;
    events narrow it to "is the event's version still current")."""
    if current is None:
        return RotationDecision(False, "the key does not exist (a compliance finding, not a rotation)")
    if not current.enabled:
        return RotationDecision(False, DISABLED_REASON.format(version=current.version))
    rotation = managed.rotation
    if rotation.imported:
        return RotationDecision(False, IMPORTED_REASON.format(name=managed.name))
    if current.expires is not None and current.expires <= now:
        return RotationDecision(True, f"current version {current.version} expired", emergency=True)
    notify = rotation.notify_before.delta if rotation.notify_before is not None else None
    if current.expires is not None and notify is not None and current.expires - now <= notify:
        return RotationDecision(True, f"current version {current.version} expires within {rotation.notify_before}")
    if current.created is not None and now - current.created >= rotation.rotate_after.delta:
        return RotationDecision(True, f"current version {current.version} is older than {rotation.rotate_after}")
    return RotationDecision(False, f"current version {current.version} is not due")


def rotate_from(
    managed: Any,
    from_version: str,
    *,
    trigger: str,
    reason: str,
    emergency: bool = False,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RotationOutcome:
    """Create the key's next version, once, if `from_version` is still current. Safe to call from any number of
    triggers and instances at once: they converge on one new version."""
    started = time.monotonic()
    if managed.rotation.imported:  # whoever asks (event, operator): a generated version is not the customer's key
        record = audit.append(
            AuditRecord(
                uuid.uuid4().hex, clock.now(), "rotate", trigger, managed.name, RotationStatus.REFUSED.value,
                from_version=from_version, detail={"reason": IMPORTED_REASON.format(name=managed.name)},
            )
        )  # fmt: skip
        why = IMPORTED_REASON.format(name=managed.name)
        return RotationOutcome(managed.name, RotationStatus.REFUSED, why, trigger, from_version, None, record.record_id)
    claim_id = rotation_claim_id(managed.ref.vault_host, managed.name, from_version)
    result = claims.claim(claim_id, uuid.uuid4().hex, now=clock.now(), ttl=CLAIM_TTL)

    def finish(
        status: RotationStatus, why: str, to_version: str | None = None, error: CmkError | None = None, **detail: Any
    ) -> RotationOutcome:
        record = audit.append(
            AuditRecord(
                record_id=uuid.uuid4().hex,
                at=clock.now(),
                action="rotate",
                trigger=trigger,
                key=managed.name,
                outcome=status.value,
                from_version=from_version,
                to_version=to_version,
                duration_ms=int((time.monotonic() - started) * 1000),
                detail={"reason": why, "requested_because": reason, **detail},
            )
        )
        telemetry.event(
            names.KEY_ROTATED, key=managed.name, version=to_version, previous_version=from_version,
            trigger=trigger.split(":", 1)[0], outcome=status.value,
        )  # fmt: skip
        alert = _alert_for(managed, status, why, trigger, from_version, to_version, record.record_id, emergency)
        if alert is not None:
            alerts.publish(alert)
        return RotationOutcome(
            managed.name, status, why, trigger, from_version, to_version, record.record_id, alert, error
        )

    if not result.taken:
        held = result.claim
        if held.status is ClaimStatus.COMPLETED:
            done = held.outcome.get("to_version")
            return finish(RotationStatus.ALREADY_ROTATED, f"already rotated from {from_version}", done)
        return finish(RotationStatus.IN_PROGRESS, f"a rotation from {from_version} is in progress elsewhere")

    claim = result.claim
    response_lost = False
    try:
        # Decided from the version list, read now: never a snapshot taken before the claim (the sweep's is older than
        # its pacing wait), and a version created after `from_version` (the vault's own policy) is the rotation.
        newest = newest_since(managed, from_version, vault=vault)
        # A version made within the same second as `from_version` does not order by `created`: the key's latest read
        # decides that one (only events can name so young a version; the sweep rotates versions due by age).
        current = newest or vault.get_key(managed.ref)
        if not current.enabled:
            claims.release(claim)
            return finish(RotationStatus.REFUSED, DISABLED_REASON.format(version=current.version))
        if current.version.lower() != from_version.lower():
            # The vault (its own policy) or an earlier, crashed holder already made the next version: that counts.
            claims.complete(claim, {"to_version": current.version, "by": "observed"})
            return finish(RotationStatus.ALREADY_ROTATED, "a newer version already exists", current.version)
        created, corrections = create_next_version(managed, vault=vault, clock=clock)
    except CmkError as exc:
        # A create/rotate whose response was lost (or a step after it that failed) may still have made the version:
        # re-read instead of creating again (L1). Found: it is the rotation. Not found: nothing was made, retry later.
        made = _made_anyway(managed, from_version, vault=vault)
        if made is None:
            claims.release(claim)  # nothing was created, or the error is the vault's: the next trigger retries at once
            return finish(RotationStatus.FAILED, f"rotation failed: {exc.code}: {exc}", None, exc, error_code=exc.code)
        try:
            created, corrections = read_back_and_correct(managed, made.version, vault=vault, clock=clock)
        except CmkError as again:
            with contextlib.suppress(PreconditionFailed):
                claims.complete(claim, {"to_version": made.version, "by": "app"})
            why = f"new version {made.version} could not be read back or corrected: {again.code}: {again}"
            return finish(RotationStatus.FAILED, why, made.version, again, error_code=again.code)
        response_lost = True
    # Taken over after our expiry? The version exists and the taker sees it as current: nothing more to do.
    with contextlib.suppress(PreconditionFailed):
        claims.complete(claim, {"to_version": created.version, "by": "app"})
    extra = {"response_lost": True} if response_lost else {}
    problems = verify_version(managed, created, clock.now())
    if problems:
        return finish(
            RotationStatus.FAILED,
            f"new version {created.version} differs from the inventory: {'; '.join(problems)}",
            created.version,
            problems=problems,
            corrections=corrections,
            **extra,
        )
    return finish(RotationStatus.ROTATED, reason, created.version, corrections=corrections, **extra)


def newest_since(managed: Any, from_version: str, *, vault: KeyVault) -> KeyVersion | None:
    """The newest version created after `from_version` as the version list shows it now (never cached), or None."""
    versions = vault.list_versions(managed.ref)
    base = next((v for v in versions if v.version.lower() == from_version.lower()), None)
    if base is None or base.created is None:
        return None
    newer = [v for v in versions if v.created is not None and v.created > base.created]
    return max(newer, key=lambda v: v.created) if newer else None


def _made_anyway(managed: Any, from_version: str, *, vault: KeyVault) -> KeyVersion | None:
    try:
        return newest_since(managed, from_version, vault=vault)
    except CmkError:
        return None  # cannot tell: nothing is assumed made, and the claim is released for the next trigger


def create_next_version(managed: Any, *, vault: KeyVault, clock: Clock) -> tuple[KeyVersion, list[str]]:
    """`rotate_key` when the vault's policy would make the version the inventory wants, else `create_key` from the
    inventory's spec; then read it back and correct ops and expiry if the service produced something else."""
    policy = vault.get_rotation_policy(managed.ref)
    if _policy_makes_what_inventory_wants(managed, policy):
        made = vault.rotate_key(managed.ref)
    else:
        made = vault.create_key(
            managed.ref,
            kty=managed.kty,
            size=managed.size,
            ops=managed.ops,
            expires=managed.rotation.expiry_for(clock.now()),
        )
    return read_back_and_correct(managed, made.version, vault=vault, clock=clock)


def read_back_and_correct(managed: Any, version: str, *, vault: KeyVault, clock: Clock) -> tuple[KeyVersion, list[str]]:
    """Read `version` back as the service made it and correct ops and expiry where they differ from the inventory."""
    created = vault.get_key(managed.ref, version)
    corrections: list[str] = []
    changes: dict[str, Any] = {}
    if set(created.ops) != set(managed.ops):
        changes["ops"] = managed.ops
        corrections.append(f"ops {sorted(created.ops)} -> {sorted(managed.ops)}")
    wanted = managed.rotation.expiry_for(created.created or clock.now())
    if wanted is not None and (created.expires is None or abs(created.expires - wanted) > EXPIRY_TOLERANCE):
        changes["expires"] = wanted
        corrections.append(f"expiry {created.expires} -> {wanted}")
    if changes:
        created = vault.update_version(managed.ref, created.version, **changes)
    return created, corrections


def _policy_makes_what_inventory_wants(managed: Any, policy: RotationPolicy | None) -> bool:
    if policy is None or not any(a.action == RotationActionType.ROTATE for a in policy.actions):
        return False  # no rotation policy of ours: create from the inventory's spec
    if forbids_expiry(managed):
        return policy.expires_in is None  # rotate_key would stamp an expiry a MySQL server cannot live with
    return True  # an expiry that differs is corrected after the read-back


def verify_version(managed: Any, version: KeyVersion, now: datetime) -> list[str]:
    problems = []
    if version.kty != managed.kty:
        problems.append(f"kty is {version.kty}, wants {managed.kty}")
    if version.size is not None and version.size != managed.size:
        problems.append(f"size is {version.size}, wants {managed.size}")
    if set(version.ops) != set(managed.ops):
        problems.append(f"ops are {sorted(version.ops)}, want {sorted(managed.ops)}")
    if forbids_expiry(managed) and version.expires is not None:
        problems.append("has an expiry, which a MySQL flexible server cannot live with")
    if not version.enabled:
        problems.append("is disabled")
    return problems


def _alert_for(
    managed: Any,
    status: RotationStatus,
    why: str,
    trigger: str,
    from_version: str | None,
    to_version: str | None,
    audit_id: str,
    emergency: bool,
) -> Alert | None:
    data = {
        "key": managed.name,
        "vault": managed.vault.name,
        "old_version": from_version,
        "new_version": to_version,
        "reason": why,
        "trigger": trigger,
        "audit_id": audit_id,
    }
    subject = f"/keys/{managed.vault.name}/{managed.name}"
    if status is RotationStatus.ROTATED and emergency:
        return Alert(EXPIRED_ALERT, subject, Severity.CRITICAL, f"{managed.name} expired; rotated at once", data)
    if status is RotationStatus.ROTATED:
        return Alert(ROTATED_ALERT, subject, Severity.INFO, f"{managed.name} rotated to {to_version}", data)
    if status is RotationStatus.FAILED:
        severity = Severity.CRITICAL if emergency else Severity.HIGH
        return Alert(FAILED_ALERT, subject, severity, f"rotation of {managed.name} failed: {why}", data)
    return None
