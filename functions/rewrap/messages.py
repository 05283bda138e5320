"""The re-wrap queue's messages: one shard (partition) of one key's DEKs to move to one target version.

A message is a bounded piece of work that any worker of any instance can pick up, any number of times: it names its
target by versioned key id and its place by a continuation token, so a duplicate or a retry repeats nothing that
already happened (a DEK already on the target is skipped). Malformed messages are dropped, never retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.arm_ids import last_segment
from shared.errors import MalformedMessage
from shared.queues import REWRAP_QUEUE as REWRAP_QUEUE  # re-exported: the queue these messages travel on
from shared.timestamps import iso_utc

MESSAGE_VERSION = 1
MAX_DEK_IDS = 500
REWRAP = "rewrap"
ROTATE_SHARD_KEY = "rotate-shard-key"  # the shard's own key renewed (its DEKs re-sealed locally), not a KEK re-wrap
ACTIONS = (REWRAP, ROTATE_SHARD_KEY)


@dataclass(frozen=True)
class RewrapMessage:
    key: str  # the inventory's key name
    target: str  # versioned key id every DEK must end on
    partition: str
    continuation: str | None = None
    dek_ids: tuple[str, ...] = ()  # a retry of exactly these DEKs (the ones that failed), instead of a page
    started_at: datetime | None = None  # when the re-wrap to `target` began, for its duration
    action: str = REWRAP

    @property
    def target_version(self) -> str:
        return last_segment(self.target)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MESSAGE_VERSION,
            "key": self.key,
            "target": self.target,
            "partition": self.partition,
            "continuation": self.continuation,
            "dek_ids": list(self.dek_ids),
            "started_at": iso_utc(self.started_at),
            **({"action": self.action} if self.action != REWRAP else {}),  # a re-wrap's message is as it always was
        }


def _text(message: dict, name: str, *, optional: bool = False) -> str | None:
    value = message.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise MalformedMessage(name, "must be a non-empty string of at most 1024 characters")
    return value


def parse_rewrap_message(message: object) -> RewrapMessage:
    if not isinstance(message, dict):
        raise MalformedMessage("message", f"must be a JSON object, got {type(message).__name__}")
    if message.get("version") != MESSAGE_VERSION:
        raise MalformedMessage("version", f"must be {MESSAGE_VERSION}")
    target = _text(message, "target")
    assert target is not None
    if "/keys/" not in target or len(target.split("/keys/", 1)[1].strip("/").split("/")) != 2:
        raise MalformedMessage("target", "must be a versioned key id (…/keys/{name}/{version})")
    ids = message.get("dek_ids") or []
    if not isinstance(ids, list) or len(ids) > MAX_DEK_IDS or not all(isinstance(i, str) and i for i in ids):
        raise MalformedMessage("dek_ids", f"must be a list of at most {MAX_DEK_IDS} DEK ids")
    started = message.get("started_at")
    try:
        started_at = datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None
    except (AttributeError, ValueError):
        raise MalformedMessage("started_at", "must be an ISO-8601 instant") from None
    action = message.get("action", REWRAP)
    if action not in ACTIONS:
        raise MalformedMessage("action", f"must be one of {', '.join(ACTIONS)}")
    return RewrapMessage(
        action=action,
        key=_text(message, "key") or "",
        target=target,
        partition=_text(message, "partition") or "",
        continuation=_text(message, "continuation", optional=True),
        dek_ids=tuple(ids),
        started_at=started_at,
    )
