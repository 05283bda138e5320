"""The DEK table's bookkeeping rows: per-shard counters, the directory of a key's shards, and the quarantine.

Every row here has a key `escape_key` never produces (it starts `%7E`, an escaped `~`, and `~` is never escaped), so
none can be mistaken for a DEK, and none has a `KeyBase` column, so a scan for a key's DEKs never counts one.

  counter     PartitionKey = the shard, RowKey = `%7Ecount|` + escaped normalised key base; Counts = JSON
              {version: DEKs}. In the shard's partition, so it changes in one entity-group transaction with the DEK
              rows it counts (Azure Tables: atomic within one partition, up to 100 operations). A DEK under a
              shard key (key id `{kek}/shards/{shard}/g{n}`) counts in its KEK's row as version `shards/{shard}/g{n}`.
  directory   PartitionKey = `%7Emeta`, RowKey = `shards|{base}`: Shards = JSON {escaped shard: shard}, every shard
              that holds a counter of the key, written (If-Match) before the counter's first transaction (a crash
              between leaves a shard with no counter: it reads as zero). A key's counters are then found by point
              reads only, one for the directory and one per shard (read at once): no query, whose cost would grow
              with the table on a store that scans (Azurite does).
  quarantine  PartitionKey = `%7Emeta`, RowKey = `quarantine|{base}|{shard}|{dek id}`: a DEK the re-wrap refused;
              beside them `qcount|{base}`, their number, changed in the same transaction as an entry, so a status
              reads one row when nothing is quarantined and lists the entries only when some are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from shared.azure.tables import escape_key, utc_instant
from shared.envelope import QuarantinedDek
from shared.model import normalize_key_id

META_PARTITION = "%7Emeta"
RESERVED_PREFIX = "%7E"  # no escaped DEK id starts so; RESERVED_END is the first key past every such row
RESERVED_END = "%7F"
COUNTER_PREFIX = "%7Ecount|"
COUNTER_FORMAT = 1


def counter_key(base: str) -> str:
    return COUNTER_PREFIX + escape_key(normalize_key_id(base))


def counter_entity(partition_key: str, partition: str, base: str, counts: dict[str, int]) -> dict:
    return {
        "PartitionKey": partition_key,
        "RowKey": counter_key(base),
        "Partition": partition,
        "Base": normalize_key_id(base),
        "Counts": json.dumps({v: n for v, n in sorted(counts.items()) if n}, separators=(",", ":")),
        "Format": COUNTER_FORMAT,
    }


def counter_counts(entity: dict) -> dict[str, int]:
    """{version: DEKs} of a counter row; malformed JSON counts as unknown (ValueError), never as zero."""
    counts = json.loads(entity.get("Counts") or "{}")
    if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
        raise ValueError(f"counter {entity.get('RowKey')!r}: Counts is not a map of integers")
    return counts


def directory_key(base: str) -> str:
    return f"shards|{escape_key(normalize_key_id(base))}"


def directory_entity(base: str, shards: dict[str, str]) -> dict:
    return {
        "PartitionKey": META_PARTITION,
        "RowKey": directory_key(base),
        "Base": normalize_key_id(base),
        "Shards": json.dumps(dict(sorted(shards.items())), separators=(",", ":")),
    }


def directory_shards(entity: dict) -> dict[str, str]:
    shards = json.loads(entity.get("Shards") or "{}")
    if not isinstance(shards, dict):
        raise ValueError(f"directory {entity.get('RowKey')!r}: Shards is not a map")
    return shards


def quarantine_count_key(base: str) -> str:
    return f"qcount|{escape_key(normalize_key_id(base))}"


def quarantine_prefix(base: str) -> str:
    return f"quarantine|{escape_key(normalize_key_id(base))}|"


def quarantine_key(base: str, partition: str, dek_id: str) -> str:
    return quarantine_prefix(base) + escape_key(partition) + "|" + escape_key(dek_id)


def quarantine_entity(entry: QuarantinedDek) -> dict:
    return {
        "PartitionKey": META_PARTITION,
        "RowKey": quarantine_key(entry.key_base, entry.partition, entry.dek_id),
        "Partition": entry.partition,
        "DekId": entry.dek_id,
        "StuckOn": entry.key_id,
        "Reason": entry.reason,
        "Since": utc_instant(entry.since),
    }


def quarantine_from(entity: dict) -> QuarantinedDek:
    since = entity["Since"]
    return QuarantinedDek(
        entity["StuckOn"], entity["Partition"], entity["DekId"], entity["Reason"], utc_instant(since)
        if isinstance(since, datetime) else datetime.fromisoformat(str(since)),
    )  # fmt: skip


def range_clause(prefix: str) -> str:
    """`PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi` for every RowKey that starts with `prefix` (whose
    last character is `|`, so the first key past the range ends in `}`)."""
    assert prefix.endswith("|")
    return "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


def range_parameters(prefix: str) -> dict[str, str]:
    return {"pk": META_PARTITION, "lo": prefix, "hi": prefix[:-1] + "}"}


def versioned(base: str, counts: dict[str, int]) -> dict[str, int]:
    """{version: n} under `base` -> {normalised versioned id: n}, the form every reader compares in."""
    return {f"{normalize_key_id(base)}/{v}": n for v, n in counts.items() if n}


def split_counted(key_id: str) -> tuple[str, str, str]:
    """(base, "/", version) a DEK counts under: its KEK's versionless id and version, or, for a DEK under a shard
    key (`{kek}/shards/{shard}/g{n}`), the KEK's versionless id and `shards/{shard}/g{n}`, so it lands in the key's
    own counter row and directory and `versioned` gives back its key id (readers map it to a KEK version)."""
    normalised = normalize_key_id(key_id)
    if "/shards/" in normalised:
        base, _, rest = normalised.partition("/shards/")
        return base, "/", "shards/" + rest
    return normalised.rpartition("/")


def deltas(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, dict[str, int]]:
    """(key id before, key id after) per DEK -> {normalised base: {version: change}} (None: no DEK then)."""
    out: dict[str, dict[str, int]] = {}
    for before, after in pairs:
        for key_id, step in ((before, -1), (after, +1)):
            if key_id is None:
                continue
            base, _, version = split_counted(key_id)
            bucket = out.setdefault(base, {})
            bucket[version] = bucket.get(version, 0) + step
    return {b: {v: n for v, n in c.items() if n} for b, c in out.items() if any(c.values())}
