"""`GET /api/audit`: a page of the audit trail, newest first, for people and auditors asking "who did what, when".

The key is resolved through the inventory first, so a name the app does not manage answers UnknownKey (404) instead
of an empty page that would read as "nothing ever happened to it"; records are stored under the inventory's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.audit import AuditRecord
from shared.http.commands import AuditQuery
from shared.ports import AuditTrail


@dataclass(frozen=True)
class AuditPage:
    records: tuple[AuditRecord, ...]
    continuation: str | None  # pass back as `continuation` for the next (older) page; None on the last page

    def to_json(self) -> dict[str, Any]:
        return {"records": [r.to_json() for r in self.records], "continuation": self.continuation}


def read_audit(query: AuditQuery, *, inventory: Any, audit: AuditTrail) -> AuditPage:
    """UnknownKey for a key the inventory does not manage; InvalidInput (continuation) for a token the trail did not
    issue."""
    key = inventory.key(query.key).name if query.key is not None else None
    page = audit.page(
        key=key,
        since=query.since,
        continuation=query.continuation,
        page_size=query.limit,
        action=query.action,
        outcome=query.outcome,
    )
    return AuditPage(tuple(page.items), page.continuation)
