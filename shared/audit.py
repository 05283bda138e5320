"""The audit trail: one append-only record per action the app takes or declines, newest first when read.

It answers "who rotated this key, when, from which version, and why" for people and auditors. It never holds key
material: versions, ids, reasons and outcomes only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import InvalidInput
from shared.timestamps import iso_utc

# A Table string property holds at most 64 KiB (32K UTF-16 units); detail is context, so it is cut, never refused.
MAX_DETAIL_CHARS = 16_000
TRUNCATED = "_truncated"
MAX_PAGE_SIZE = 1000  # what one Table query returns at most
# Record ids are part of the store's sort key, so they are plain: uuid4 hex, or any short id of these characters.
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


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


def check_record_id(record_id: str) -> str:
    if not isinstance(record_id, str) or not RECORD_ID.fullmatch(record_id):
        raise InvalidInput("record_id", "must be 1-64 letters, digits, '-' or '_' (a uuid4 hex)")
    return record_id


def stored_detail(detail: dict) -> dict:
    """`detail` as every audit store keeps it: JSON (anything else as its text) and bounded. An oversize detail
    becomes `{"_truncated": true, "original_chars": n, "head": "<the first part of its JSON>"}` rather than
    failing the append: losing the record of an act would be worse than losing part of its context."""
    text = json.dumps(detail if isinstance(detail, dict) else {"value": detail}, sort_keys=True, default=str)
    if len(text) <= MAX_DETAIL_CHARS:
        return json.loads(text)
    return {TRUNCATED: True, "original_chars": len(text), "head": text[: MAX_DETAIL_CHARS - 200]}


def principal_label(inventory: Any, principal_id: str | None, *, whole: bool = False) -> str:
    """A principal as a person reading the trail knows it: its role in the inventory and the start of its id, e.g.
    `mysql (8e2c7d5a…)`, `this app (5c3e8f1a…)`, `break-glass (a7d3b9e1…)`; an id the inventory does not name stays
    whole. Ids are not secrets, but a bare GUID says nothing; the full one stays in the record's other fields, or
    in the label itself with `whole` (for text an operator acts on, such as an access step's reason)."""
    if not principal_id:
        return "unknown"
    pid = principal_id.lower()
    role = None
    if pid == (getattr(inventory, "app_identity", None) or "").lower():
        role = "this app"
    elif any(pid == p.principal_id.lower() for p in getattr(inventory, "break_glass", ())):
        role = "break-glass"
    else:
        owners = [k.service or k.name for k in getattr(inventory, "keys", ()) if k.identity.principal_id.lower() == pid]
        role = "/".join(dict.fromkeys(owners)) or None
    if not role:
        return pid
    return f"{role} ({pid})" if whole else f"{role} ({pid[:8]}…)"
