"""Which shard (Table Storage partition) a DEK lives in: one function, shared by the envelope API that writes DEKs
and the re-wrap fan-out that enqueues one message per shard, so both always agree.

The shard is a stable hash of the DEK id (the first 8 bytes of SHA-256, not Python's `hash()`, which is salted per
process) modulo the consumer's shard count, written `{partition_prefix}{n:03d}`. A fixed count spreads a large
registry over partitions that Table Storage can serve in parallel, and lets the fan-out list every shard without a
scan. Changing the count of a table that holds DEKs would move ids to other shards: it is fixed per consumer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from shared.errors import InvalidInput

DEFAULT_SHARDS = 16
MAX_SHARDS = 1000  # three digits in the partition name


def shard_count(options: Mapping[str, object] | None = None) -> int:
    """A dek-table consumer's shard count: its `shards` option, else DEFAULT_SHARDS."""
    raw = (options or {}).get("shards", DEFAULT_SHARDS)
    try:
        count = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        count = 0
    if isinstance(raw, bool) or not 1 <= count <= MAX_SHARDS:
        raise InvalidInput("shards", f"must be an integer from 1 to {MAX_SHARDS}")
    return count


def shard_of(dek_id: str, prefix: str, shards: int = DEFAULT_SHARDS) -> str:
    """The partition of `dek_id` under `prefix`: the same on every process and every run."""
    digest = hashlib.sha256(dek_id.encode()).digest()
    return f"{prefix}{int.from_bytes(digest[:8], 'big') % shards:03d}"


def all_shards(prefix: str, shards: int = DEFAULT_SHARDS) -> list[str]:
    """Every partition a consumer's DEKs may be in, so the fan-out needs no scan of the table."""
    return [f"{prefix}{n:03d}" for n in range(shards)]
