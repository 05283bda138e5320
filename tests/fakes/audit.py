"""In-memory audit trail: append-only, read newest first with the same paging contract as the Table adapter."""

from __future__ import annotations

import threading
from datetime import datetime

from shared.audit import AuditRecord
from shared.errors import InvalidInput
from shared.model import Page


class FakeAuditTrail:
    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> AuditRecord:
        with self._lock:
            self._records.append(record)
        return record

    def page(
        self,
        *,
        key: str | None = None,
        since: datetime | None = None,
        continuation: str | None = None,
        page_size: int = 50,
    ) -> Page:
        with self._lock:
            newest_first = sorted(self._records, key=lambda r: (r.at, r.record_id), reverse=True)
        matching = [
            r
            for r in newest_first
            if (key is None or r.key.lower() == key.lower()) and (since is None or r.at >= since)
        ]
        try:
            start = int(continuation) if continuation else 0
        except ValueError:
            raise InvalidInput("continuation", "not a token this audit trail issued") from None
        end = start + page_size
        return Page(tuple(matching[start:end]), str(end) if end < len(matching) else None)

    def all(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)
