"""The audit trail: one append-only record per action the app takes or declines, newest first when read.

It answers "who rotated this key, when, from which version, and why" for people and auditors. It never holds key
material: versions, ids, reasons and outcomes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.timestamps import iso_utc


@dataclass(frozen=True)
class AuditRecord:
    record_id: str  # uuid4 hex, set by whoever appends
    at: datetime
    action: str  # "rotate", "set-rotation-policy", ...
    trigger: str  # "event:{id}", "timer", "operator:{caller}", "vault"
    key: str  # the inventory's key name
    outcome: str  # "rotated", "superseded", "already-rotated", "in-progress", "failed", "policy-set", ...
    from_version: str | None = None
    to_version: str | None = None
    duration_ms: int = 0
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "at": iso_utc(self.at),
            "action": self.action,
            "trigger": self.trigger,
            "key": self.key,
            "outcome": self.outcome,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "duration_ms": self.duration_ms,
            "detail": dict(self.detail),
        }
