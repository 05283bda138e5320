"""The triggers of a rotation: Key Vault's near-expiry and expiry events, and an operator's request.

Each narrows the one decision to its own question (is the event's version still current? has this operator already
asked for this?) and hands the act to `rotate_from`, so all of them converge on one new version. The sweep's part is
in functions.sweep_rotation.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from functions.rotation.imports import ask_for_import
from functions.rotation.rotate import SUPERSEDED_ALERT, RotationOutcome, RotationStatus, rotate_from
from shared.audit import AuditRecord
from shared.coordination.claims import ClaimStatus
from shared.errors import ServiceUnavailable, Throttled
from shared.events import KeyExpired, KeyNearExpiry
from shared.http.commands import RotateCommand
from shared.model import Alert, Severity
from shared.ports import Alerts, AuditTrail, Claims, Clock, KeyVault
from shared.telemetry import NO_TELEMETRY, Telemetry

# An identical operator request (same key, same reason) within this window answers "already rotated".
OPERATOR_DEDUPE_WINDOW = timedelta(minutes=15)
TRANSIENT = (Throttled, ServiceUnavailable)


def on_near_expiry(
    event: KeyNearExpiry,
    *,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RotationOutcome:
    """Rotate when the event's version is still current; an event for a superseded version is a no-op."""
    return _on_key_event(
        event,
        "KeyNearExpiry",
        emergency=False,
        vault=vault,
        claims=claims,
        audit=audit,
        alerts=alerts,
        clock=clock,
        telemetry=telemetry,
    )


def on_expired(
    event: KeyExpired,
    *,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RotationOutcome:
    """Emergency rotation, with a critical alert, when the expired version is still current."""
    return _on_key_event(
        event,
        "KeyExpired",
        emergency=True,
        vault=vault,
        claims=claims,
        audit=audit,
        alerts=alerts,
        clock=clock,
        telemetry=telemetry,
    )


def _on_key_event(
    event: KeyNearExpiry | KeyExpired,
    what: str,
    *,
    emergency: bool,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RotationOutcome:
    managed = event.key
    trigger = f"event:{event.event_id}"
    current = vault.get_key(managed.ref)
    if managed.rotation.imported:  # its next version comes from the customer's HSM: ask for it, at its level, once
        asked = ask_for_import(
            managed, current, trigger=trigger, claims=claims, alerts=alerts, audit=audit, clock=clock
        )
        why = asked.message if asked else f"{what} for imported key {managed.name}: import already asked for"
        status = RotationStatus.IMPORT_DUE
        return RotationOutcome(managed.name, status, why, trigger, current.version, None, None, asked)
    if current.version != event.version and (current.enabled or _newer_enabled_exists(vault, managed, event.version)):
        return _superseded(managed, event.version, current.version, what, trigger, audit, alerts, clock, emergency)
    outcome = rotate_from(
        managed,
        event.version if current.version == event.version else current.version,
        trigger=trigger,
        reason=f"{what} event for version {event.version}",
        emergency=emergency,
        vault=vault,
        claims=claims,
        audit=audit,
        alerts=alerts,
        clock=clock,
        telemetry=telemetry,
    )
    if outcome.status is RotationStatus.FAILED and isinstance(outcome.error, TRANSIENT):
        raise outcome.error  # recorded and alerted; raising makes Event Grid redeliver once the vault recovers
    return outcome


def _newer_enabled_exists(vault: KeyVault, managed: Any, version: str) -> bool:
    """Only asked when the vault's latest version is disabled. Versions list in no useful order: compare creation
    times, never positions."""
    versions = vault.list_versions(managed.ref)
    mine = next((v for v in versions if v.version == version), None)
    if mine is None or mine.created is None:
        return True  # the event's version is gone (or undated): whatever is current now supersedes it
    return any(v.enabled and v.created and v.created > mine.created for v in versions if v.version != version)


def _superseded(
    managed: Any,
    version: str,
    current: str,
    what: str,
    trigger: str,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    emergency: bool,
) -> RotationOutcome:
    why = f"{what} for version {version}, but {current} is current: superseded"
    record = audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            "rotate",
            trigger,
            managed.name,
            RotationStatus.SUPERSEDED.value,
            from_version=version,
            to_version=current,
            detail={"reason": why},
        )
    )
    alert = None
    if not emergency:
        alert = Alert(
            SUPERSEDED_ALERT,
            f"/keys/{managed.vault.name}/{managed.name}",
            Severity.INFO,
            f"{managed.name}: near expiry of {version}, nothing done: {current} is newer",
            {
                "key": managed.name,
                "vault": managed.vault.name,
                "old_version": version,
                "new_version": current,
                "reason": why,
                "trigger": trigger,
                "audit_id": record.record_id,
            },
        )
        alerts.publish(alert)
    return RotationOutcome(
        managed.name, RotationStatus.SUPERSEDED, why, trigger, version, current, record.record_id, alert
    )


def _request_claim_id(managed: Any, reason: str, bucket: int) -> str:
    digest = hashlib.sha256(" ".join(reason.split()).lower().encode()).hexdigest()[:16]
    return f"operator|{managed.ref.vault_host}|{managed.name.lower()}|{digest}|{bucket}"


def rotate_now(
    command: RotateCommand,
    *,
    inventory: Any,
    vault: KeyVault,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
) -> RotationOutcome:
    """An operator's rotation (`POST /api/rotations`). UnknownKey for a key the inventory does not manage. An
    identical request (same key and reason) within the dedupe window answers with the first one's outcome."""
    managed = inventory.key(command.key)
    trigger = f"operator:{command.caller}"
    now = clock.now()
    window = int(OPERATOR_DEDUPE_WINDOW.total_seconds())
    bucket = int(now.timestamp()) // window
    for earlier in (bucket, bucket - 1):  # the window straddles at most two buckets
        held = claims.get(_request_claim_id(managed, command.reason, earlier))
        if held is not None and held.status is ClaimStatus.COMPLETED and now - held.taken_at < OPERATOR_DEDUPE_WINDOW:
            return RotationOutcome(
                managed.name,
                RotationStatus.ALREADY_ROTATED,
                "an identical request already rotated this key",
                trigger,
                held.outcome.get("from_version"),
                held.outcome.get("to_version"),
                held.outcome.get("audit_id"),
            )
    result = claims.claim(
        _request_claim_id(managed, command.reason, bucket), uuid.uuid4().hex, now=now, ttl=timedelta(minutes=10)
    )
    if not result.taken:
        return RotationOutcome(
            managed.name, RotationStatus.IN_PROGRESS, "an identical request is being carried out", trigger
        )
    current = vault.get_key(managed.ref)
    outcome = rotate_from(
        managed,
        current.version,
        trigger=trigger,
        reason=command.reason,
        vault=vault,
        claims=claims,
        audit=audit,
        alerts=alerts,
        clock=clock,
        telemetry=telemetry,
    )
    if outcome.status in (RotationStatus.ROTATED, RotationStatus.ALREADY_ROTATED):
        claims.complete(
            result.claim,
            {"from_version": outcome.from_version, "to_version": outcome.to_version, "audit_id": outcome.audit_id},
        )
    else:
        claims.release(result.claim)
    return outcome
