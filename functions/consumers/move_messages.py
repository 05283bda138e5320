"""The `cmk-move` queue's messages: one consumer of one key to move to that key's current version, then followed.

A message carries its `move_id` (made once, when the move is decided) as the claim's owner: the host retrying the
same message still holds the claim it took, while a duplicate decision (a redelivered event, the sweep) is another
owner and finds the claim taken. `operation_url` and `phase` say what a follow-up checks; `started_at` (the app's
clock) bounds how long a move is followed before it is given up and alerted on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from shared.errors import MalformedMessage
from shared.timestamps import iso_utc

MESSAGE_VERSION = 1
Phase = Literal["start", "follow"]
PHASES = ("start", "follow")


@dataclass(frozen=True)
class MoveMessage:
    key: str  # the inventory's key name
    kind: str  # the consumer's kind (mysql-flexible-server, disk-encryption-set)
    resource_id: str
    move_id: str  # the claim's owner: one per decision to move
    trigger: str  # what decided it ("event:{id}", "timer")
    phase: Phase = "start"
    target: str | None = None  # follow: the versioned key id the started PATCH points at
    operation_url: str | None = None  # follow: ARM's operation, None when ARM finished at once or refused (409)
    started_at: datetime | None = None  # follow: when this move was first tried (app's clock)

    def following(self, target: str, operation_url: str | None, started_at: datetime) -> MoveMessage:
        """The follow-up of this move; `started_at` is when what it waits on began (its own PATCH, or its wait for
        a resource busy with another operation)."""
        return replace(self, phase="follow", target=target, operation_url=operation_url, started_at=started_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MESSAGE_VERSION,
            "key": self.key,
            "kind": self.kind,
            "resource_id": self.resource_id,
            "move_id": self.move_id,
            "trigger": self.trigger,
            "phase": self.phase,
            "target": self.target,
            "operation_url": self.operation_url,
            "started_at": iso_utc(self.started_at),
        }


def _text(message: dict, name: str, *, optional: bool = False, limit: int = 2048) -> str | None:
    value = message.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise MalformedMessage(name, f"must be a non-empty string of at most {limit} characters")
    return value


def parse_move_message(message: object) -> MoveMessage:
    """The message as sent by `MoveMessage.to_json`; MalformedMessage naming the first field that is not."""
    if not isinstance(message, dict):
        raise MalformedMessage("message", f"must be a JSON object, got {type(message).__name__}")
    if message.get("version") != MESSAGE_VERSION:
        raise MalformedMessage("version", f"must be {MESSAGE_VERSION}")
    phase = message.get("phase", "start")
    if phase not in PHASES:
        raise MalformedMessage("phase", f"must be one of {', '.join(PHASES)}")
    target = _text(message, "target", optional=phase == "start")
    if target is not None and ("/keys/" not in target or len(target.split("/keys/", 1)[1].strip("/").split("/")) != 2):
        raise MalformedMessage("target", "must be a versioned key id (…/keys/{name}/{version})")
    started = message.get("started_at")
    try:
        started_at = datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None
    except (AttributeError, ValueError):
        raise MalformedMessage("started_at", "must be an ISO-8601 instant") from None
    if phase == "follow" and started_at is None:
        raise MalformedMessage("started_at", "a follow-up says when its move started")
    return MoveMessage(
        key=_text(message, "key") or "",
        kind=_text(message, "kind", limit=64) or "",
        resource_id=_text(message, "resource_id") or "",
        move_id=_text(message, "move_id", limit=64) or "",
        trigger=(_text(message, "trigger", optional=True) or "")[:200],
        phase=phase,
        target=target,
        operation_url=_text(message, "operation_url", optional=True),
        started_at=started_at,
    )
