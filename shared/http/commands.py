"""What operators ask for over HTTP, as values: parsed and validated at the edge, decided on by handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RotateCommand:
    """`POST /api/rotations`: rotate `key` now. `caller` names who asked (for the audit trail), never a secret."""

    key: str
    reason: str
    caller: str = "operator"


@dataclass(frozen=True)
class AuditQuery:
    """`GET /api/audit`: records newest first, only `key`'s when given, at or after `since`."""

    key: str | None = None
    since: datetime | None = None
    continuation: str | None = None
    limit: int = 50
    action: str | None = None  # only records of this action ("rotate", "revocation", ...), filtered by the store
    outcome: str | None = None  # only records with this outcome ("rotated", "failed", ...)


@dataclass(frozen=True)
class AlertsQuery:
    """`GET /api/alerts`: the latest alerts, newest first, only those in `state` (pending, sent, failed) when given."""

    state: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class RevokeCommand:
    """`POST /api/revocations`: revoke `principal_id`'s (or `service`'s identity's) use of `key`, or disable the key.
    Only a plan unless `dry_run` is False; a disable-key also needs `confirm` equal to the key's name."""

    key: str
    action: str  # a RevocationAction value
    reason: str
    caller: str
    principal_id: str | None = None
    service: str | None = None
    dry_run: bool = True
    confirm: str | None = None


@dataclass(frozen=True)
class RestoreCommand:
    """`POST /api/restorations`: the break-glass undo of revocation `revocation_id`."""

    revocation_id: str
    reason: str
    caller: str
