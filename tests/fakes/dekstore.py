"""An in-memory DEK registry with Table Storage's semantics: insert conflicts, ETag-guarded replace, paging."""

from __future__ import annotations

import uuid
from dataclasses import replace

from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import KeyRef, Page, WrappedDek


class FakeDekStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], WrappedDek] = {}

    def add(self, dek: WrappedDek) -> WrappedDek:
        k = (dek.partition, dek.dek_id)
        if k in self._rows:
            raise Conflict(f"DEK {dek.partition}/{dek.dek_id} already exists")
        stored = replace(dek, etag=uuid.uuid4().hex)
        self._rows[k] = stored
        return stored

    def get(self, partition: str, dek_id: str) -> WrappedDek:
        try:
            return self._rows[(partition, dek_id)]
        except KeyError:
            raise NotFound(f"DEK {partition}/{dek_id} not found") from None

    def replace(self, dek: WrappedDek) -> WrappedDek:
        current = self.get(dek.partition, dek.dek_id)
        if dek.etag is None:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        if current.etag != dek.etag:
            raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read")
        stored = replace(dek, etag=uuid.uuid4().hex)
        self._rows[(dek.partition, dek.dek_id)] = stored
        return stored

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page:
        if page_size < 1:
            raise InvalidInput("page_size", "must be at least 1")
        ids = sorted(d for p, d in self._rows if p == partition and (continuation is None or d > continuation))
        chunk = ids[:page_size]
        nxt = chunk[-1] if len(ids) > page_size else None
        return Page(tuple(self._rows[(partition, d)] for d in chunk), nxt)

    def partitions(self) -> list[str]:
        return sorted({p for p, _ in self._rows})

    def count_by_key_id(self, key: KeyRef) -> dict[str, int]:
        prefix = key.versionless_id.lower() + "/"
        counts: dict[str, int] = {}
        for dek in self._rows.values():
            if dek.key_id.lower().startswith(prefix):
                counts[dek.key_id] = counts.get(dek.key_id, 0) + 1
        return counts
