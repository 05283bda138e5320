"""An operator's release of a quarantined DEK: the one way, besides a successful move, that a DEK the re-wrap refused
goes back to being tried. After a repair (the right wrapped value or KCV restored from a backup) the next sweep moves
it; released while still broken, the next page refuses it again and it comes back, alerting once more."""

from __future__ import annotations

import uuid
from typing import Any

from shared.audit import AuditRecord
from shared.errors import UnknownReference
from shared.http.commands import ReleaseCommand
from shared.ports import AuditTrail, Clock, DekStore


def release_quarantined(
    command: ReleaseCommand, *, inventory: Any, dekstore: DekStore, audit: AuditTrail, clock: Clock
) -> dict[str, Any]:
    """Release it and record who did and why; UnknownReference naming `dek_id` when it is not quarantined."""
    managed = inventory.key(command.key)
    if not dekstore.release(managed.ref, command.partition, command.dek_id):
        raise UnknownReference(
            "dek_id", f"{command.partition}/{command.dek_id} is not quarantined under {managed.name}"
        )
    record = audit.append(
        AuditRecord(
            uuid.uuid4().hex, clock.now(), "quarantine-release", f"operator:{command.caller}", managed.name,
            "released", detail={"partition": command.partition, "dek_id": command.dek_id, "reason": command.reason},
        )
    )  # fmt: skip
    return {
        "key": managed.name,
        "partition": command.partition,
        "dek_id": command.dek_id,
        "released": True,
        "audit_id": record.record_id,
    }
