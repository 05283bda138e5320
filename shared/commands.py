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
