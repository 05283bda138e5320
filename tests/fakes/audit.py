"""In-memory audit trail: append-only, read newest first with the same paging contract as the Table adapter."""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import datetime

from shared.audit import MAX_PAGE_SIZE, AuditRecord, check_record_id, stored_detail
from shared.errors import InvalidInput
from shared.model import Page

TOKEN = re.compile(r"fake-audit-(\d+)")  # opaque to callers; anything else was not issued here


class FakeAuditTrail:
    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> AuditRecord:
        """Like the table: detail kept as JSON and bounded; appending the same (at, record_id) again (a retry after
        a lost reply) keeps the one record."""
        check_record_id(record.record_id)
        stored = dataclasses.replace(record, detail=stored_detail(record.detail))
        with self._lock:
            if not any(r.record_id == record.record_id and r.at == record.at for r in self._records):
                self._records.append(stored)
        return stored

    def page(
        self,
        *,
        key: str | None = None,
        since: datetime | None = None,
        continuation: str | None = None,
        page_size: int = 50,
        action: str | None = None,
        outcome: str | None = None,
    ) -> Page:
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        with self._lock:  # newest first; records of the same instant by id, as the table's RowKey orders them
            newest_first = sorted(self._records, key=lambda r: r.record_id)
            newest_first.sort(key=lambda r: r.at, reverse=True)
        matching = [
            r
            for r in newest_first
            if (key is None or r.key.lower() == key.lower())
            and (since is None or r.at >= since)
            and (action is None or r.action == action)
            and (outcome is None or r.outcome == outcome)
        ]
        start = 0
        if continuation:
            issued = TOKEN.fullmatch(continuation) if isinstance(continuation, str) else None
            if issued is None:
                raise InvalidInput("continuation", "not a token this audit trail issued")
            start = int(issued.group(1))
        end = start + page_size
        return Page(tuple(matching[start:end]), f"fake-audit-{end}" if end < len(matching) else None)

    def all(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)
