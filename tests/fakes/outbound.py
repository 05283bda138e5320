"""Fakes for the outbound ports: work queue, alerts and the Azure-resource consumers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace

from shared.azure.consumers import consumer_kind, require_versioned_key_url
from shared.errors import CmkError, InvalidInput, NotFound, ServiceUnavailable
from shared.model import Alert, ConsumerKind, ConsumerState

# Azure Storage queues hold a message of at most 64 KiB as stored: the adapter stores base64 of the JSON (host.json's
# messageEncoding), so about 48 KiB of JSON. Azure (and Azurite) answer a larger one 413 RequestBodyTooLarge.
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class QueuedMessage:
    message: dict
    delay_seconds: int


class FakeWorkQueue:
    def __init__(self) -> None:
        self.messages: list[QueuedMessage] = []

    def send(self, message: dict, *, delay_seconds: int = 0) -> None:
        if not isinstance(message, dict):
            raise InvalidInput("message", "must be a JSON object")
        if delay_seconds < 0 or delay_seconds > 7 * 24 * 3600:
            raise InvalidInput("delay_seconds", "must be between 0 and 7 days")
        stored = len(base64.b64encode(json.dumps(message).encode()))
        if stored > MAX_QUEUE_MESSAGE_BYTES:  # what StorageWorkQueue raises when the service answers 413
            raise CmkError(
                f"queue: RequestBodyTooLarge: the message is {stored} bytes as stored, over the 64 KiB limit"
            )
        self.messages.append(QueuedMessage(dict(message), delay_seconds))

    def visible(self) -> list[dict]:
        """What a receiver would get now: delayed messages are not visible yet (no time passes in the fake)."""
        return [m.message for m in self.messages if m.delay_seconds == 0]

    def drain(self) -> list[dict]:
        taken, self.messages = self.messages, []
        return [m.message for m in taken]


class FakeAlerts:
    """Keeps what was published; `fail_next(n)` makes the next n publishes fail like an unreachable topic."""

    def __init__(self) -> None:
        self.published: list[Alert] = []
        self._failures = 0

    def fail_next(self, n: int = 1) -> None:
        self._failures = n

    def publish(self, alert: Alert) -> None:
        if self._failures:
            self._failures -= 1
            raise ServiceUnavailable("alert topic unreachable")
        self.published.append(alert)


class FakeConsumers:
    """Azure resources that use a key, by (kind, resource id), validated as AzureConsumers validates them: the kind
    must be a consumer ARM can move, the id of that kind's type, the key URL versioned. Unknown resources are
    NotFound, as in ARM. `set_available(...)` plays the service losing (or regaining) its key."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], ConsumerState] = {}
        self.moves: list[tuple[str, str]] = []  # (resource id, key url) of every point_to, in order

    def add(
        self,
        kind: str,
        resource_id: str,
        key_url: str | None,
        follows_latest: bool = False,
        *,
        other_key_urls: tuple[str, ...] = (),
    ) -> None:
        self._states[(kind, resource_id.lower())] = ConsumerState(
            ConsumerKind(kind), resource_id, key_url, follows_latest, other_key_urls=tuple(other_key_urls)
        )

    def set_available(self, kind: str, resource_id: str, available: bool, error: str | None = None) -> None:
        state = self.get_state(kind, resource_id)
        self._states[(kind, resource_id.lower())] = replace(
            state, available=available, error=None if available else (error or "the resource reports Inaccessible")
        )

    def get_state(self, kind: str, resource_id: str) -> ConsumerState:
        consumer_kind(kind, resource_id)
        try:
            return self._states[(kind, resource_id.lower())]
        except KeyError:
            raise NotFound(f"{kind} {resource_id} not found") from None

    def point_to(self, kind: str, resource_id: str, key_url: str) -> ConsumerState:
        consumer_kind(kind, resource_id)
        key_url = require_versioned_key_url(key_url)
        state = self.get_state(kind, resource_id)
        updated = replace(state, key_url=key_url)
        moved = state.key_url is not None and state.key_url.lower() != key_url.lower()
        if state.kind is ConsumerKind.DISK_ENCRYPTION_SET and moved:  # a DES keeps its old key in previousKeys
            updated = replace(updated, other_key_urls=(*state.other_key_urls, state.key_url))
        self._states[(kind, resource_id.lower())] = updated
        self.moves.append((resource_id, key_url))
        return updated
