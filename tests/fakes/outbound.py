"""Fakes for the outbound ports: work queue, alerts and the Azure-resource consumers."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.azure.consumers import consumer_kind, require_versioned_key_url
from shared.errors import CmkError, InvalidInput, NotFound, OperationInProgress, ServiceUnavailable
from shared.model import Alert, ConsumerKind, ConsumerState
from shared.moves import MoveStarted, MoveStatus

# Azure Storage queues hold a message of at most 64 KiB as stored: the adapter stores base64 of the JSON (host.json's
# messageEncoding), so about 48 KiB of JSON. Azure (and Azurite) answer a larger one 413 RequestBodyTooLarge.
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class QueuedMessage:
    message: dict
    delay_seconds: int


class FakeWorkQueue:
    """Refuses what Azure Queue Storage refuses: a message whose base64 (host.json's encoding) exceeds 64 KiB."""

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


@dataclass
class _Operation:
    kind: str
    resource_id: str
    key_url: str
    ends_at: datetime | None  # None: finishes on the next read (no clock)
    error: str | None = None
    done: bool = False


class FakeConsumers:
    """Azure resources that use a key, by (kind, resource id), validated as AzureConsumers validates them: the kind
    must be a consumer ARM can move, the id of that kind's type, the key URL versioned. Unknown resources are
    NotFound, as in ARM. `set_available(...)` plays the service losing (or regaining) its key; `use_identity(...)`
    an operator moving the resource's encryption to another identity; `set_rotation_error(...)` a DES whose
    automatic key rotation failed.

    A move is ARM's long-running PATCH: `start_move` answers at once with an operation URL; the operation stays
    InProgress for `lro_duration` on `clock` (with no clock, or a zero duration, it is done when next read), then
    applies the key, or fails without applying it after `fail_next_move(error)`. A second start while one is in
    flight is refused with OperationInProgress, as ARM answers 409."""

    def __init__(self, clock: Any = None, lro_duration: timedelta = timedelta(0)) -> None:
        self._states: dict[tuple[str, str], ConsumerState] = {}
        self._operations: dict[str, _Operation] = {}
        self._fail_next: str | None = None
        self.clock = clock
        self.lro_duration = lro_duration
        self.moves: list[tuple[str, str]] = []  # (resource id, key url) of every PATCH ARM accepted, in order
        self.refused: list[tuple[str, str]] = []  # (resource id, key url) of every PATCH refused as in flight

    def add(
        self,
        kind: str,
        resource_id: str,
        key_url: str | None,
        follows_latest: bool = False,
        *,
        other_key_urls: tuple[str, ...] = (),
        identities: tuple[str, ...] = (),
    ) -> None:
        self._states[(kind, resource_id.lower())] = ConsumerState(
            ConsumerKind(kind),
            resource_id,
            key_url,
            follows_latest,
            other_key_urls=tuple(other_key_urls),
            identities=tuple(p.lower() for p in identities),
        )

    def use_identity(self, kind: str, resource_id: str, *principal_ids: str) -> None:
        state = self.get_state(kind, resource_id)
        self._states[(kind, resource_id.lower())] = replace(state, identities=tuple(p.lower() for p in principal_ids))

    def attach_identity(self, kind: str, resource_id: str, *principal_ids: str) -> None:
        """An operator attaching user-assigned identities to the resource (not yet used for its encryption)."""
        state = self.get_state(kind, resource_id)
        attached = tuple(dict.fromkeys((*state.attached_identities, *(p.lower() for p in principal_ids))))
        self._states[(kind, resource_id.lower())] = replace(state, attached_identities=attached)

    def set_rotation_error(self, kind: str, resource_id: str, error: str | None) -> None:
        """A DES's `autoKeyRotationError` (None clears it); ARM then reports the set as not available."""
        self.set_available(kind, resource_id, error is None, error)

    def set_available(self, kind: str, resource_id: str, available: bool, error: str | None = None) -> None:
        state = self.get_state(kind, resource_id)
        self._states[(kind, resource_id.lower())] = replace(
            state, available=available, error=None if available else (error or "the resource reports Inaccessible")
        )

    def fail_next_move(self, error: str = "KeyVaultAccessForbidden: the identity cannot use the key") -> None:
        """The next started move ends Failed with `error` (the key is not applied)."""
        self._fail_next = error

    def get_state(self, kind: str, resource_id: str) -> ConsumerState:
        consumer_kind(kind, resource_id)
        self._settle()
        try:
            return self._states[(kind, resource_id.lower())]
        except KeyError:
            raise NotFound(f"{kind} {resource_id} not found") from None

    def in_flight(self, resource_id: str) -> bool:
        self._settle()
        return any(o.resource_id.lower() == resource_id.lower() and not o.done for o in self._operations.values())

    def start_move(self, kind: str, resource_id: str, key_url: str) -> MoveStarted:
        consumer_kind(kind, resource_id)
        key_url = require_versioned_key_url(key_url)
        self.get_state(kind, resource_id)
        if self.in_flight(resource_id):
            self.refused.append((resource_id, key_url))
            raise OperationInProgress(f"{kind} {resource_id}: AnotherOperationInProgress")
        now = self.clock.now() if self.clock is not None else None
        ends = now + self.lro_duration if now is not None else None
        url = f"https://management.azure.com/providers/operations/{uuid.uuid4().hex}"
        self._operations[url] = _Operation(kind, resource_id, key_url, ends, self._fail_next)
        self._fail_next = None
        self.moves.append((resource_id, key_url))
        return MoveStarted(url)

    def move_status(self, kind: str, resource_id: str, operation_url: str | None) -> MoveStatus:
        consumer_kind(kind, resource_id)
        if operation_url is None:
            return MoveStatus("Succeeded")
        if not operation_url.startswith("https://management.azure.com/"):
            raise InvalidInput("operation_url", "must be an https URL on management.azure.com")
        operation = self._operations.get(operation_url)
        if operation is None:
            raise NotFound(f"operation {operation_url} not found")
        self._settle(reading=operation)
        if not operation.done:
            return MoveStatus("InProgress")
        return MoveStatus("Failed", operation.error) if operation.error else MoveStatus("Succeeded")

    def _settle(self, reading: _Operation | None = None) -> None:
        """Finish every operation whose time has come (without a clock: the one being read)."""
        for operation in self._operations.values():
            if operation.done:
                continue
            due = operation is reading if operation.ends_at is None else self.clock.now() >= operation.ends_at
            if due:
                operation.done = True
                if operation.error is None:
                    self._apply(operation)

    def _apply(self, operation: _Operation) -> None:
        key = (operation.kind, operation.resource_id.lower())
        state = self._states[key]
        updated = replace(state, key_url=operation.key_url)
        moved = state.key_url is not None and state.key_url.lower() != operation.key_url.lower()
        if state.kind is ConsumerKind.DISK_ENCRYPTION_SET and moved:  # a DES keeps its old key in previousKeys
            updated = replace(updated, other_key_urls=(*state.other_key_urls, state.key_url))
        self._states[key] = updated
