"""An in-memory shard-key store with Table Storage's semantics: insert conflicts, ETag-guarded replace and delete,
thread-safe (a KEK re-wrap and a shard-key rotation race on one row), and the adapter's refusals."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import replace

from shared.envelope import check_shard_key
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import ShardKey


class FakeShardKeyStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], ShardKey] = {}
        self._lock = threading.Lock()

    def add(self, shard_key: ShardKey) -> ShardKey:
        check_shard_key(shard_key)
        k = (shard_key.shard, shard_key.generation)
        with self._lock:
            if k in self._rows:
                raise Conflict(f"shard key {shard_key.shard}/g{shard_key.generation} already exists")
            stored = self._rows[k] = replace(shard_key, etag=uuid.uuid4().hex)
            return stored

    def get(self, shard: str, generation: int) -> ShardKey:
        with self._lock:
            try:
                return self._rows[(shard, generation)]
            except KeyError:
                raise NotFound(f"shard key {shard}/g{generation} not found") from None

    def replace(self, shard_key: ShardKey) -> ShardKey:
        if not shard_key.etag:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        check_shard_key(shard_key)
        k = (shard_key.shard, shard_key.generation)
        with self._lock:
            current = self._rows.get(k)
            if current is None:
                raise NotFound(f"shard key {shard_key.shard}/g{shard_key.generation} not found")
            if current.etag != shard_key.etag:
                raise PreconditionFailed(f"shard key {shard_key.shard}/g{shard_key.generation} changed since read")
            stored = self._rows[k] = replace(shard_key, etag=uuid.uuid4().hex)
            return stored

    def delete(self, shard_key: ShardKey) -> None:
        if not shard_key.etag:
            raise InvalidInput("etag", "a delete needs the ETag it read")
        k = (shard_key.shard, shard_key.generation)
        with self._lock:
            current = self._rows.get(k)
            if current is None:
                return
            if current.etag != shard_key.etag:
                raise PreconditionFailed(f"shard key {shard_key.shard}/g{shard_key.generation} changed since read")
            del self._rows[k]

    def list_shard(self, shard: str) -> list[ShardKey]:
        with self._lock:
            return sorted((sk for (s, _), sk in self._rows.items() if s == shard), key=lambda sk: sk.generation)

    def list_prefix(self, prefix: str) -> list[ShardKey]:
        if not prefix:
            raise InvalidInput("prefix", "must be a non-empty string")
        pattern = re.compile(re.escape(prefix) + r"\d{3}")
        with self._lock:
            found = [sk for (s, _), sk in self._rows.items() if pattern.fullmatch(s)]
        return sorted(found, key=lambda sk: (sk.shard, sk.generation))
