"""Envelope encryption for applications, through the ports only: a DEK wrapped under a managed key, opened, re-wrapped.

shared.envelope.deks creates, opens and re-wraps DEKs and checks each unwrap against its key check value;
shared.envelope.counts sums a key's per-shard DEK counters and names the DEKs the re-wrap cannot move (quarantine);
shared.envelope.sharding places a DEK in its shard (the re-wrap fan-out computes it the same way);
shared.envelope.cli is the operator's command (`python -m shared.envelope.cli seed ...`), not imported here.
"""

from shared.envelope.counts import QuarantinedDek, behind_by_shard, count_by_version
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
from shared.envelope.sharding import DEFAULT_SHARDS, all_shards, shard_count, shard_of

__all__ = [
    "DEFAULT_SHARDS",
    "DecryptFailed",
    "DekHandle",
    "KcvMismatch",
    "QuarantinedDek",
    "all_shards",
    "behind_by_shard",
    "count_by_version",
    "create_dek",
    "decrypt",
    "encrypt",
    "key_check_value",
    "open_dek",
    "rewrapped",
    "shard_count",
    "shard_of",
    "unwrap_checked",
]
