"""An in-memory DEK registry with Table Storage's semantics: insert conflicts, ETag-guarded replace, paging.

Kept to what the service does: thread-safe (re-wrap workers race on one DEK), an opaque continuation token (a
caller cannot make one up), at most 1,000 items per page, and the same refusals as the adapter (a versionless key
id, empty wrapped bytes, a previous id without its wrapped copy) so a test over the fake cannot pass what Azure
would refuse.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from dataclasses import replace

from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import KeyRef, Page, WrappedDek, normalize_key_id

MAX_PAGE_SIZE = 1000


class FakeDekStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], WrappedDek] = {}
        self._lock = threading.Lock()

    def add(self, dek: WrappedDek) -> WrappedDek:
        _check(dek)
        k = (dek.partition, dek.dek_id)
        with self._lock:
            if k in self._rows:
                raise Conflict(f"DEK {dek.partition}/{dek.dek_id} already exists")
            stored = replace(dek, etag=uuid.uuid4().hex)
            self._rows[k] = stored
            return stored

    def get(self, partition: str, dek_id: str) -> WrappedDek:
        with self._lock:
            try:
                return self._rows[(partition, dek_id)]
            except KeyError:
                raise NotFound(f"DEK {partition}/{dek_id} not found") from None

    def replace(self, dek: WrappedDek) -> WrappedDek:
        if dek.etag is None:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        _check(dek)
        with self._lock:
            current = self._rows.get((dek.partition, dek.dek_id))
            if current is None:
                raise NotFound(f"DEK {dek.partition}/{dek.dek_id} not found")
            if current.etag != dek.etag:
                raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read")
            stored = replace(dek, etag=uuid.uuid4().hex)
            self._rows[(dek.partition, dek.dek_id)] = stored
            return stored

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        start = _decode(continuation) if continuation else None
        with self._lock:
            ids = sorted(d for p, d in self._rows if p == partition and (start is None or d >= start))
            chunk = ids[:page_size]
            nxt = _encode(ids[page_size]) if len(ids) > page_size else None
            return Page(tuple(self._rows[(partition, d)] for d in chunk), nxt)

    def partitions(self) -> list[str]:
        with self._lock:
            return sorted({p for p, _ in self._rows})

    def count_by_key_id(self, key: KeyRef) -> dict[str, int]:
        """Per version, keyed by the normalised versioned id: every spelling of the vault URL is one key (M6)."""
        prefix = key.normalized_id + "/"
        counts: dict[str, int] = {}
        with self._lock:
            for dek in self._rows.values():
                key_id = normalize_key_id(dek.key_id)
                # The adapter filters on KeyBase (the id minus its last segment): a shard-wrapped DEK's id
                # ({kek}/shards/{shard}/g{n}) has another base, so it is no DEK on a KEK version (as in Azure).
                if key_id.startswith(prefix) and "/" not in key_id[len(prefix) :]:
                    counts[key_id] = counts.get(key_id, 0) + 1
        return counts


def _check(dek: WrappedDek) -> None:
    base, _, version = dek.key_id.rstrip("/").rpartition("/")
    if "/keys/" not in base or not version:
        raise InvalidInput("key_id", "must be a versioned key id (https://{vault}/keys/{name}/{version})")
    if not isinstance(dek.wrapped, bytes) or not dek.wrapped:
        raise InvalidInput("wrapped", "must be non-empty bytes")
    if (dek.previous_key_id is None) != (dek.previous_wrapped is None):
        raise InvalidInput("previous_wrapped", "previous_key_id and previous_wrapped go together")
    if not dek.partition or not dek.dek_id:
        raise InvalidInput("dek_id", "partition and dek_id must be non-empty")


def _encode(start: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"fake": 1, "start": start}).encode()).decode()


def _decode(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("start"), str):
        raise InvalidInput("continuation", "not a token this DEK store issued")
    return data["start"]
