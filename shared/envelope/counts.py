"""How many DEKs sit on each key version, read from counters instead of a scan, and the DEKs that cannot move.

The registry's writers (create, the re-wrap's page, deletion) keep one counter row per (shard, key) in the shard's
own partition and change it in the same entity-group transaction as the DEK rows, so a counter can never disagree
with its rows, whatever crashes between two calls (shared.azure.dekstore). Status, revocation plans, retirement and
the sweep's resume read those few rows: constant work however many DEKs a key has.

`count_by_version` is the one place a key's per-version total is summed. A DEK under a shard key (a key hierarchy)
is counted under its own key id, `{kek}/shards/{shard}/g{n}`, in the same counter rows; given the key's shard keys
(shards x generations rows) it counts on the KEK version that wraps its shard key, and without them on none: so
status, plans, retirement and the fan-out see "DEKs per KEK version" for either kind of key, still without a scan.

A DEK the re-wrap cannot move (its unwrap fails its KCV check, or the vault refuses its version for good) is
quarantined: recorded once (one alert), skipped by the sweep's resume and by re-wrap pages, shown on the status, and
released by an operator or by a later successful move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.model import ShardKey, normalize_key_id, same_key_id

SHARD_SEGMENT = "/shards/"


@dataclass(frozen=True)
class QuarantinedDek:
    """A DEK the re-wrap refused to move, and why: kept out of resume until released."""

    key_id: str  # the versioned key id it is stuck on
    partition: str
    dek_id: str
    reason: str  # an error code: KcvMismatch, KeyDisabled, UnwrapFailed, ...
    since: datetime

    @property
    def key_base(self) -> str:
        return normalize_key_id(self.key_id).rpartition("/")[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "dek_id": self.dek_id,
            "version": self.key_id.rstrip("/").rpartition("/")[2],
            "reason": self.reason,
            "since": self.since.isoformat(),
        }


def count_by_version(
    shard_counts: Mapping[str, Mapping[str, int]], shard_keys: Iterable[ShardKey] = ()
) -> dict[str, int]:
    """A key's DEKs per KEK version (normalised versioned id), summed over its shards' counters. A DEK under a shard
    key counts on the version that wraps its shard key (one of `shard_keys`); on none when that is not given."""
    wraps = {(sk.shard.lower(), sk.generation): normalize_key_id(sk.kek_id) for sk in shard_keys}
    total: dict[str, int] = {}
    for counts in shard_counts.values():
        for key_id, n in counts.items():
            if not n:
                continue
            if is_shard_key_id(key_id):
                key_id = wraps.get(_shard_and_generation(key_id))
                if key_id is None:
                    continue
            total[key_id] = total.get(key_id, 0) + n
    return total


def is_shard_key_id(key_id: str) -> bool:
    """Whether a counted key id is a shard key's (`{kek}/shards/{shard}/g{n}`), not a KEK version's."""
    return SHARD_SEGMENT in key_id


def _shard_and_generation(key_id: str) -> tuple[str, int] | None:
    shard, _, generation = key_id.rstrip("/").partition(SHARD_SEGMENT)[2].rpartition("/")
    if not generation.startswith("g") or not generation[1:].isdigit():
        return None
    return shard.lower(), int(generation[1:])


def behind_by_shard(
    shard_counts: Mapping[str, Mapping[str, int]], current_id: str, quarantined: Iterable[QuarantinedDek] = ()
) -> dict[str, int]:
    """Shard -> DEKs not on `current_id` that a re-wrap page could still move (quarantined ones left out): the
    shards the sweep's resume sends a page for, and no other."""
    stuck: dict[str, int] = {}
    for q in quarantined:
        if not same_key_id(q.key_id, current_id):
            stuck[q.partition] = stuck.get(q.partition, 0) + 1
    behind = {}
    for partition, counts in shard_counts.items():
        # A DEK under a shard key is behind only through its shard key, which the shard keys' own step re-wraps.
        n = -stuck.get(partition, 0)
        n += sum(c for k, c in counts.items() if not is_shard_key_id(k) and not same_key_id(k, current_id))
        if n > 0:
            behind[partition] = n
    return behind
