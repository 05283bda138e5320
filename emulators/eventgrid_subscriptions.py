"""Event Grid webhook subscriptions: what a subscription spec may say, which events it takes, and its retry delays."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from emulators.arm_ids import is_at_or_above
from emulators.eventgrid_schema import EVENTGRID_SCHEMA, SCHEMAS, Event

# Event Grid's retry schedule (then every 12 h), before `retry_scale`.
RETRY_SCHEDULE = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0)


class SubscriptionError(ValueError):
    """A subscription that cannot be created: a bad field, or an endpoint that failed the handshake."""


@dataclass(frozen=True)
class Subscription:
    name: str
    endpoint: str
    topic: str | None = None
    event_types: tuple[str, ...] | None = None
    subject_begins_with: str | None = None
    subject_ends_with: str | None = None
    schema: str = EVENTGRID_SCHEMA
    max_attempts: int = 30
    ttl_minutes: float = 1440
    retry_delays: tuple[float, ...] | None = None

    @classmethod
    def from_spec(cls, spec: object) -> Subscription:
        if not isinstance(spec, dict):
            raise SubscriptionError("subscription: must be a JSON object")
        unknown = set(spec) - {f for f in cls.__dataclass_fields__} - {"validate"}
        if unknown:
            raise SubscriptionError(f"{sorted(unknown)[0]}: unknown field")
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise SubscriptionError("name: required, 1-64 characters")
        endpoint = spec.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise SubscriptionError(f"endpoint: required, an http(s) webhook URL ({endpoint!r})")
        schema = spec.get("schema", EVENTGRID_SCHEMA)
        if schema not in SCHEMAS:
            raise SubscriptionError(f"schema: must be one of {', '.join(SCHEMAS)} ({schema!r})")
        for text_field in ("topic", "subject_begins_with", "subject_ends_with"):
            if spec.get(text_field) is not None and not isinstance(spec[text_field], str):
                raise SubscriptionError(f"{text_field}: must be a string")
        event_types = spec.get("event_types")
        if event_types is not None and (
            not isinstance(event_types, list) or not all(isinstance(t, str) and t for t in event_types)
        ):
            raise SubscriptionError("event_types: must be a list of event type names")
        max_attempts = spec.get("max_attempts", 30)
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or not 1 <= max_attempts <= 30:
            raise SubscriptionError(f"max_attempts: must be an integer from 1 to 30 ({max_attempts!r})")
        ttl = spec.get("ttl_minutes", 1440)
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= 1440:
            raise SubscriptionError(f"ttl_minutes: must be a number above 0 and at most 1440 ({ttl!r})")
        delays = spec.get("retry_delays")
        if delays is not None and (
            not isinstance(delays, list)
            or not delays
            or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays)
        ):
            raise SubscriptionError("retry_delays: must be a non-empty list of seconds (numbers >= 0)")
        return cls(
            name=name,
            endpoint=endpoint,
            topic=spec.get("topic") or None,
            event_types=tuple(event_types) if event_types else None,
            subject_begins_with=spec.get("subject_begins_with"),
            subject_ends_with=spec.get("subject_ends_with"),
            schema=schema,
            max_attempts=max_attempts,
            ttl_minutes=float(ttl),
            retry_delays=tuple(float(d) for d in delays) if delays else None,
        )

    def matches(self, event: Event) -> bool:
        if self.topic and not is_at_or_above(self.topic, event.topic):
            return False
        if self.event_types and event.event_type.lower() not in {t.lower() for t in self.event_types}:
            return False
        if self.subject_begins_with and not event.subject.lower().startswith(self.subject_begins_with.lower()):
            return False
        return not self.subject_ends_with or event.subject.lower().endswith(self.subject_ends_with.lower())

    def delay_after(self, attempt: int, retry_scale: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if self.retry_delays:
            return self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
        return RETRY_SCHEDULE[min(attempt, len(RETRY_SCHEDULE)) - 1] * retry_scale

    def to_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        shown["event_types"] = list(self.event_types) if self.event_types else None
        shown["retry_delays"] = list(self.retry_delays) if self.retry_delays else None
        return shown
