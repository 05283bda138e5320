"""Envelope encryption for applications, through the ports only: a DEK wrapped under a managed key, opened, re-wrapped.

shared.envelope.deks creates, opens and re-wraps DEKs and checks each unwrap against its key check value;
shared.envelope.counts sums a key's per-shard DEK counters and names the DEKs the re-wrap cannot move (quarantine);
shared.envelope.sharding places a DEK in its shard (the re-wrap fan-out computes it the same way);
shared.envelope.shard_keys, .hierarchy and .shard_rotation are the optional key hierarchy (a key per shard, wrapped
by the KEK, wraps the DEKs: `dek_table.hierarchy: shard-keys`);
shared.envelope.cli is the operator's command (`python -m shared.envelope.cli seed ...`), not imported here.
"""

from shared.envelope.counts import QuarantinedDek, behind_by_shard, count_by_version, is_shard_key_id
from shared.envelope.deks import (
    DecryptFailed,
    DekHandle,
    KcvMismatch,
    create_dek,
    decrypt,
    encrypt,
    key_check_value,
    open_dek,
    rewrapped,
    unwrap_checked,
)
from shared.envelope.hierarchy import (
    create_sharded_dek,
    current_shard_key,
    default_cache,
    dek_table_of,
    deks_per_kek_version,
    hierarchy_of,
    is_hierarchical,
    open_any,
    open_record,
    shard_prefix,
)
from shared.envelope.key_reads import CachedKeyReads, version_of
from shared.envelope.shard_keys import (
    DEFAULT_TTL_SECONDS,
    HIERARCHIES,
    HIERARCHY_FLAT,
    HIERARCHY_SHARD_KEYS,
    SHARD_WRAP_ALGORITHM,
    ShardKeyCache,
    check_shard_key,
    is_shard_wrapped,
    kek_versions_of,
)
from shared.envelope.shard_rotation import ShardChange, ShardRewrap, migrate_shard, rewrap_shard_keys, rotate_shard_key
from shared.envelope.sharding import DEFAULT_SHARDS, all_shards, shard_count, shard_of

__all__ = [
    "DEFAULT_SHARDS",
    "DEFAULT_TTL_SECONDS",
    "HIERARCHIES",
    "HIERARCHY_FLAT",
    "HIERARCHY_SHARD_KEYS",
    "SHARD_WRAP_ALGORITHM",
    "CachedKeyReads",
    "DecryptFailed",
    "DekHandle",
    "KcvMismatch",
    "QuarantinedDek",
    "ShardChange",
    "ShardKeyCache",
    "ShardRewrap",
    "all_shards",
    "behind_by_shard",
    "check_shard_key",
    "count_by_version",
    "create_dek",
    "create_sharded_dek",
    "current_shard_key",
    "decrypt",
    "default_cache",
    "dek_table_of",
    "deks_per_kek_version",
    "encrypt",
    "hierarchy_of",
    "is_hierarchical",
    "is_shard_key_id",
    "is_shard_wrapped",
    "kek_versions_of",
    "key_check_value",
    "migrate_shard",
    "open_any",
    "open_dek",
    "open_record",
    "rewrap_shard_keys",
    "rewrapped",
    "rotate_shard_key",
    "shard_count",
    "shard_of",
    "shard_prefix",
    "unwrap_checked",
    "version_of",
]
