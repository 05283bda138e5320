"""Re-wrapping every DEK onto a key's new version: the part that must never lose data.

functions.rewrap.fan_out answers a new version by enqueueing one message per DEK shard (and the consumer moves);
functions.rewrap.worker re-wraps one bounded page, paced within the vault's budget, and re-enqueues its continuation;
functions.rewrap.messages is their queue message; functions.rewrap.poison alerts on a page the queue gave up on;
functions.rewrap.progress reads a re-wrap's progress from its two audit records and the registry's counts;
functions.rewrap.shard_keys re-wraps a shard's shard keys (one unwrap each) where it has them, instead of its DEKs,
and schedules shard-key rotations (functions.rewrap.shard_pages turns both into the worker's outcomes).
"""

from functions.rewrap.fan_out import (
    ANNOUNCE_TTL,
    CONSUMER_ALERT,
    FOLLOW_WINDOW,
    MoveOutcome,
    announce_claim_id,
    dek_partitions,
    enqueue_move,
    move_dependents,
    move_dependents_once,
    on_new_version,
)
from functions.rewrap.messages import REWRAP_QUEUE, RewrapMessage, parse_rewrap_message
from functions.rewrap.poison import POISONED_ALERT, alert_poisoned_page
from functions.rewrap.progress import rewrap_progress
from functions.rewrap.shard_keys import schedule_shard_rotations, shard_keys_behind
from functions.rewrap.worker import (
    BUDGET_WINDOW,
    COMPLETED_ALERT,
    KCV_ALERT,
    REWRAP_ACTION,
    WholePageFailed,
    rewrap_page,
    window_limit,
)

__all__ = [
    "ANNOUNCE_TTL",
    "BUDGET_WINDOW",
    "COMPLETED_ALERT",
    "CONSUMER_ALERT",
    "FOLLOW_WINDOW",
    "KCV_ALERT",
    "POISONED_ALERT",
    "REWRAP_ACTION",
    "REWRAP_QUEUE",
    "MoveOutcome",
    "RewrapMessage",
    "WholePageFailed",
    "alert_poisoned_page",
    "announce_claim_id",
    "dek_partitions",
    "enqueue_move",
    "move_dependents",
    "move_dependents_once",
    "on_new_version",
    "parse_rewrap_message",
    "rewrap_page",
    "rewrap_progress",
    "schedule_shard_rotations",
    "shard_keys_behind",
    "window_limit",
]
