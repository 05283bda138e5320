"""An in-memory DEK registry with Table Storage's semantics: insert conflicts, ETag-guarded replace, paging.

Kept to what the service does: thread-safe (re-wrap workers race on one DEK), an opaque continuation token (a
caller cannot make one up), at most 1,000 items per page, and the same refusals as the adapter (a versionless key
id, empty wrapped bytes, a previous id without its wrapped copy) so a test over the fake cannot pass what Azure
would refuse. Counters per (shard, key) change under the same lock as the rows, as the adapter changes them in one
transaction; `_counts` is there for a test to put a counter off and see the reconciliation find it.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace

from shared.envelope import QuarantinedDek
from shared.errors import CmkError, Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import KeyRef, Page, WrappedDek, normalize_key_id

MAX_PAGE_SIZE = 1000


class FakeDekStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], WrappedDek] = {}
        self._counts: dict[str, dict[str, int]] = {}  # partition -> {normalised versioned id: DEKs}
        self._quarantine: dict[tuple[str, str, str], QuarantinedDek] = {}
        self._lock = threading.Lock()
        self.listed: list[str] = []  # partitions list_page read, in order: what a test of targeted resume checks

    def add(self, dek: WrappedDek) -> WrappedDek:
        return self.add_many([dek])[0]

    def add_many(self, deks: Sequence[WrappedDek]) -> list[WrappedDek]:
        _one_partition(deks)
        for dek in deks:
            _check(dek)
        with self._lock:
            for dek in deks:
                if (dek.partition, dek.dek_id) in self._rows:
                    raise Conflict(f"DEK {dek.partition}/{dek.dek_id} already exists")
            stored = []
            for dek in deks:
                stored.append(replace(dek, etag=uuid.uuid4().hex))
                self._rows[(dek.partition, dek.dek_id)] = stored[-1]
                self._count(dek.partition, dek.key_id, +1)
            return stored

    def delete(self, dek: WrappedDek) -> None:
        if dek.etag is None:
            raise InvalidInput("etag", "a replace or delete needs the ETag it read")
        with self._lock:
            current = self._rows.get((dek.partition, dek.dek_id))
            if current is None:
                raise NotFound(f"DEK {dek.partition}/{dek.dek_id} not found")
            if current.etag != dek.etag:
                raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read")
            del self._rows[(dek.partition, dek.dek_id)]
            self._count(dek.partition, current.key_id, -1)

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
            self._count(dek.partition, current.key_id, -1)
            self._count(dek.partition, dek.key_id, +1)
            return stored

    def replace_many(self, changes: Sequence[tuple[WrappedDek, WrappedDek]]) -> list[WrappedDek | CmkError]:
        _one_partition([new for _, new in changes])
        out: list[WrappedDek | CmkError] = []
        for read, new in changes:
            try:
                out.append(self.replace(replace(new, etag=read.etag)))
            except (PreconditionFailed, NotFound) as exc:
                out.append(exc)
        return out

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        start = _decode(continuation) if continuation else None
        with self._lock:
            self.listed.append(partition)
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

    def shard_counts(self, key: KeyRef) -> dict[str, dict[str, int]]:
        prefix = key.normalized_id + "/"
        with self._lock:
            out = {p: {k: n for k, n in c.items() if k.startswith(prefix) and n} for p, c in self._counts.items()}
        return {p: c for p, c in out.items() if c}

    def reconcile(self, key: KeyRef) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        prefix = key.normalized_id + "/"
        with self._lock:
            found: dict[str, dict[str, int]] = {}
            for (partition, _), dek in self._rows.items():
                key_id = normalize_key_id(dek.key_id)
                if key_id.startswith(prefix):
                    found.setdefault(partition, {})[key_id] = found.get(partition, {}).get(key_id, 0) + 1
            drift = {}
            for partition in set(found) | set(self._counts):
                mine = {k: n for k, n in self._counts.get(partition, {}).items() if k.startswith(prefix) and n}
                if mine != found.get(partition, {}):
                    drift[partition] = (mine, found.get(partition, {}))
                    others = {k: n for k, n in self._counts.get(partition, {}).items() if not k.startswith(prefix)}
                    self._counts[partition] = others | found.get(partition, {})
            return drift

    def probe(self, key_id: str) -> bool:
        wanted = normalize_key_id(key_id)
        with self._lock:
            return any(normalize_key_id(d.key_id) == wanted for d in self._rows.values())

    def quarantine(self, entry: QuarantinedDek) -> bool:
        with self._lock:
            k = (entry.key_base, entry.partition, entry.dek_id)
            if k in self._quarantine:
                return False
            self._quarantine[k] = entry
            return True

    def quarantined(self, key: KeyRef) -> list[QuarantinedDek]:
        with self._lock:
            return [q for (base, _, _), q in sorted(self._quarantine.items()) if base == key.normalized_id]

    def release(self, key: KeyRef, partition: str, dek_id: str) -> bool:
        with self._lock:
            return self._quarantine.pop((key.normalized_id, partition, dek_id), None) is not None

    def _count(self, partition: str, key_id: str, step: int) -> None:
        counts = self._counts.setdefault(partition, {})
        key_id = normalize_key_id(key_id)
        counts[key_id] = max(0, counts.get(key_id, 0) + step)


def _one_partition(deks: Sequence[WrappedDek]) -> None:
    if not deks:
        raise InvalidInput("deks", "must name at least one DEK")
    if len({d.partition for d in deks}) != 1:
        raise InvalidInput("partition", "one write holds DEKs of one partition only")


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
