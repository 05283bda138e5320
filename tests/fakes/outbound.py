"""Fakes for the outbound ports: work queue, alerts and the Azure-resource consumers."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.errors import InvalidInput, NotFound, ServiceUnavailable
from shared.model import Alert, ConsumerKind, ConsumerState


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
    """Azure resources that use a key, by (kind, resource id). Unknown resources are NotFound, as in ARM."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], ConsumerState] = {}

    def add(self, kind: str, resource_id: str, key_url: str | None, follows_latest: bool = False) -> None:
        self._states[(kind, resource_id.lower())] = ConsumerState(
            ConsumerKind(kind), resource_id, key_url, follows_latest
        )

    def get_state(self, kind: str, resource_id: str) -> ConsumerState:
        try:
            return self._states[(kind, resource_id.lower())]
        except KeyError:
            raise NotFound(f"{kind} {resource_id} not found") from None

    def point_to(self, kind: str, resource_id: str, key_url: str) -> ConsumerState:
        state = self.get_state(kind, resource_id)
        if "/keys/" not in key_url or len(key_url.split("/keys/", 1)[1].strip("/").split("/")) != 2:
            raise InvalidInput("key_url", f"must be a versioned key URL ({key_url!r})")
        updated = replace(state, key_url=key_url)
        self._states[(kind, resource_id.lower())] = updated
        return updated
