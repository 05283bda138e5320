"""Keys imported from an on-premises HSM: the app cannot make their next version, so it asks a person for it.

A generated key's rotation is the app's act (functions.rotation.rotate). An imported key's new material has to come
from the customer's own HSM, so when its current version is due the app raises `CmkGuardian.Key.ImportDue`, saying
what to import (key, vault, type, size, operations), by when, and who was named to do it (`import_contact`). It
repeats as the deadline nears, louder each time and once per level: warning in the notice window, high within
7 days, critical at or after the deadline. Each level is claimed per key, version and level, so a sweep every few
minutes, the vault's near-expiry event and a second instance send it once.

When the imported version arrives (the vault's event, or the sweep finding it), the re-wrap and the consumer moves
follow as for any new version (functions.rewrap, functions.sweep_dependents).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from functions.compliance import IMPORT_TAG
from shared.alerts import publish_or_record
from shared.audit import AuditRecord
from shared.errors import PreconditionFailed
from shared.model import Alert, KeyVersion, Severity
from shared.ports import Alerts, AuditTrail, Claims, Clock
from shared.timestamps import iso_utc

IMPORT_DUE_ALERT = "CmkGuardian.Key.ImportDue"
DEFAULT_NOTICE = timedelta(days=30)  # a key without notify_before (never expires) is asked for this long ahead
HIGH_WITHIN = timedelta(days=7)
LEVEL_TTL = timedelta(days=3650)  # a level's claim is its record: kept as long as the version could matter


@dataclass(frozen=True)
class ImportDue:
    """Whether the current version of an imported key needs its successor imported, by when, and how loudly."""

    due: bool
    deadline: datetime | None
    severity: Severity | None = None

    @property
    def level(self) -> str:
        return self.severity.value if self.severity else "none"


def import_deadline(managed: Any, current: KeyVersion) -> datetime | None:
    """The version's expiry, or, for a key whose versions never expire, when it is `rotate_after` old."""
    if current.expires is not None:
        return current.expires
    if current.created is not None:
        return current.created + managed.rotation.rotate_after.delta
    return None


def import_due(managed: Any, current: KeyVersion, now: datetime) -> ImportDue:
    """Judged from the current version alone, like rotation_due: a disabled (shredded) version asks for nothing."""
    deadline = import_deadline(managed, current)
    if deadline is None or not current.enabled:
        return ImportDue(False, deadline)
    notice = managed.rotation.notify_before.delta if managed.rotation.notify_before is not None else DEFAULT_NOTICE
    rotate_at = current.created + managed.rotation.rotate_after.delta if current.created else None
    if now >= deadline:
        return ImportDue(True, deadline, Severity.CRITICAL)
    if deadline - now <= HIGH_WITHIN:
        return ImportDue(True, deadline, Severity.HIGH)
    if deadline - now <= notice or (rotate_at is not None and now >= rotate_at):
        return ImportDue(True, deadline, Severity.WARNING)
    return ImportDue(False, deadline)


def import_due_claim_id(managed: Any, version: str, level: str) -> str:
    return f"import-due|{managed.ref.vault_host}|{managed.name.lower()}|{version.lower()}|{level}"


def ask_for_import(
    managed: Any,
    current: KeyVersion,
    *,
    trigger: str,
    claims: Claims,
    alerts: Alerts,
    audit: AuditTrail,
    clock: Clock,
) -> Alert | None:
    """Raise ImportDue at the level the deadline has reached, once per (key, version, level); None when not due or
    when this level was already sent (by the sweep, an event, or another instance)."""
    decision = import_due(managed, current, clock.now())
    if not decision.due or decision.severity is None or decision.deadline is None:
        return None
    result = claims.claim(
        import_due_claim_id(managed, current.version, decision.level), uuid.uuid4().hex, now=clock.now(), ttl=LEVEL_TTL
    )
    if not result.taken:
        return None
    alert = import_due_alert(managed, current, decision, trigger=trigger)
    try:
        record = audit.append(
            AuditRecord(
                uuid.uuid4().hex,
                clock.now(),
                "import-due",
                trigger,
                managed.name,
                decision.level,
                from_version=current.version,
                detail={"deadline": iso_utc(decision.deadline), "contact": managed.import_contact},
            )
        )
    except BaseException:
        claims.release(result.claim)  # nothing was said: the next sweep or event says it
        raise
    alert = replace(alert, data={**alert.data, "audit_id": record.record_id})
    publish_or_record(alerts, alert, audit=audit, clock=clock)  # queued, or logged and audited: said either way
    with contextlib.suppress(PreconditionFailed):
        claims.complete(result.claim, {"severity": decision.level, "audit_id": record.record_id})
    return alert


def import_due_alert(managed: Any, current: KeyVersion, decision: ImportDue, *, trigger: str) -> Alert:
    """What to import and by when: everything the person named needs, and nothing of the key itself."""
    deadline = iso_utc(decision.deadline) if decision.deadline else "unknown"
    passed = decision.severity is Severity.CRITICAL
    when = f"was due by {deadline} (passed)" if passed else f"by {deadline}"
    kty = "RSA-HSM" if managed.kty == "RSA-HSM" else "RSA"
    return Alert(
        IMPORT_DUE_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}",
        decision.severity or Severity.WARNING,
        f"{managed.name} in {managed.vault.name} is imported: import its next version ({kty} {managed.size}) "
        f"{when}; contact {managed.import_contact}",
        {
            "key": managed.name,
            "vault": managed.vault.name,
            "vault_url": managed.vault.url,
            "kty": kty,
            "size": managed.size,
            "ops": list(managed.ops),
            "current_version": current.version,
            "deadline": deadline,
            "contact": managed.import_contact,
            "tag": IMPORT_TAG,
            "how": (
                f"az keyvault key import --vault-name {managed.vault.name} --name {managed.name} "
                + ("--byok-file <from your HSM> " if kty == "RSA-HSM" else "--pem-file <key.pem> ")
                + f"--kty {kty} --ops {' '.join(managed.ops)} --tags {IMPORT_TAG}=<sha256 of the public key, DER>"
            ),
            "trigger": trigger,
        },
    )
