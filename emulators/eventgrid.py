"""Event Grid emulator: system topics fed by the other emulators, one custom topic, webhook subscriptions.

It behaves like Event Grid where the app can tell the difference: a subscription is only created after the endpoint
passes the validation handshake; each event goes in its own request; 200-204 is success; 400, 401, 403 and 413 are
not retried (the event is dead-lettered at once); anything else, timeouts and refused connections included, is
retried on Event Grid's schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h) until
`max_attempts` or the time to live runs out, then dead-lettered. Deliveries of different events run concurrently,
so order is not guaranteed, as in Azure.

A delivery not answered within `delivery_timeout` (Azure: 30 s; config `eventgrid_timeout_seconds`) counts as failed
and is retried like any other failure, so a handler slower than that runs again: its delivery record says
`timed_out: true`, and `GET /admin/eventgrid/stats` counts deliveries, timeouts and the redeliveries they caused.

Timing: `retry_scale` multiplies the schedule and the time to live (tests use 0.01); a subscription's explicit
`retry_delays` are used as given. The `aeg-delivery-count` header counts the attempts made before this one (0 on
the first delivery). Pending retries live in memory only: `restore` and `reset` drop them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiohttp import web

from emulators.arm_ids import is_at_or_above
from emulators.core import MovableClock
from emulators.eventgrid_schema import (
    CLOUDEVENT_SCHEMA,
    EVENTGRID_SCHEMA,
    SCHEMAS,
    Event,
    InvalidEvent,
    default_data_version,
    parse_cloud_event,
    parse_eventgrid_event,
    utc_text,
)

RETRY_SCHEDULE = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0)
NOT_RETRIED = frozenset({400, 401, 403, 413})
MAX_PUBLISH_BYTES = 1_048_576
VALIDATION_ORIGIN = "eventgrid.azure.net"
TIMEOUT_ERROR = "DeliveryTimeout"


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


class EventGrid:
    """Routes events to webhook subscriptions from a delivery worker on the event loop given to `start()`.

    `emit` may be called from any thread and never blocks: it records the event and hands it to the loop.
    """

    def __init__(
        self,
        *,
        clock: MovableClock,
        topic_key: str,
        topic_id: str,
        retry_scale: float = 1.0,
        delivery_timeout: float = 30.0,
    ) -> None:
        self._clock = clock
        self.topic_key = topic_key
        self.topic_id = topic_id
        self.retry_scale = retry_scale
        self.delivery_timeout = delivery_timeout
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._events: list[Event] = []
        self._topic_events: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._deadletters: list[dict[str, Any]] = []
        self._pending: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.delivery_timeout))
        with self._lock:
            self._loop = asyncio.get_running_loop()
            pending, self._pending = self._pending, []
        for event in pending:
            self._dispatch(event)

    async def stop(self) -> None:
        with self._lock:
            self._loop = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------------------------------------ publishing
    def emit(self, *, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        """A system event from `topic` (an ARM resource id), as Azure services publish them."""
        self.inject(topic=topic, event_type=event_type, subject=subject, data=data, origin="system")

    def inject(self, *, topic: str, event_type: str, subject: str, data: Any, origin: str = "admin") -> dict[str, Any]:
        """Publish an arbitrary system event (the admin API uses this); returns its Event Grid schema record."""
        event = Event(
            id=str(uuid.uuid4()),
            topic=topic,
            subject=subject,
            event_type=event_type,
            event_time=utc_text(self._clock.now()),
            data=data,
            data_version=default_data_version(event_type),
            origin=origin,
        )
        self._publish(event)
        return event.to_record()

    def _publish(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            loop = self._loop
            if loop is None:
                self._pending.append(event)
                return
        try:
            loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:  # the loop closed under us: keep the event for the next start()
            with self._lock:
                self._pending.append(event)

    def _dispatch(self, event: Event) -> None:
        with self._lock:
            targets = [s for s in self._subscriptions.values() if s.matches(event)]
        for subscription in targets:
            task = asyncio.get_running_loop().create_task(self._deliver(subscription, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------------------------------------------- delivery
    async def _deliver(self, subscription: Subscription, event: Event) -> None:
        started = time.monotonic()
        ttl = subscription.ttl_minutes * 60 * self.retry_scale
        attempt = 0
        while True:
            attempt += 1
            status, error = await self._attempt(subscription, event, attempt)
            self._record_delivery(subscription, event, attempt, status, error)
            if status is not None and 200 <= status <= 204:
                return
            with self._lock:
                if self._subscriptions.get(subscription.name) is not subscription:
                    return  # deleted or replaced meanwhile: Azure stops delivering for it too
            if status in NOT_RETRIED:
                self._dead_letter(subscription, event, attempt, status, error, "NonRetriableStatusCode")
                return
            if attempt >= subscription.max_attempts:
                self._dead_letter(subscription, event, attempt, status, error, "MaxDeliveryAttemptsExceeded")
                return
            delay = subscription.delay_after(attempt, self.retry_scale)
            if time.monotonic() - started + delay > ttl:
                self._dead_letter(subscription, event, attempt, status, error, "TimeToLiveExceeded")
                return
            await asyncio.sleep(delay)

    async def _attempt(self, subscription: Subscription, event: Event, attempt: int) -> tuple[int | None, str | None]:
        """(status, error); the error of a delivery that was not answered in time starts with `TIMEOUT_ERROR`."""
        envelope = event.envelope(subscription.schema)
        headers = {
            "aeg-event-type": "Notification",
            "aeg-subscription-name": subscription.name.upper(),
            "aeg-delivery-count": str(attempt - 1),
            "aeg-output-event-id": event.id,
        }
        if subscription.schema == CLOUDEVENT_SCHEMA:
            body = json.dumps(envelope)
            headers |= {"Content-Type": "application/cloudevents+json; charset=utf-8", "aeg-metadata-version": "1.0"}
        else:
            body = json.dumps([envelope])
            headers |= {
                "Content-Type": "application/json; charset=utf-8",
                "aeg-metadata-version": "1",
                "aeg-data-version": event.data_version,
            }
        session = self._session
        if session is None:
            return None, "emulator stopping"
        timeout = aiohttp.ClientTimeout(total=self.delivery_timeout)
        try:
            async with session.post(
                subscription.endpoint, data=body.encode(), headers=headers, timeout=timeout
            ) as response:
                await response.read()
                return response.status, None
        except TimeoutError:  # aiohttp's timeouts are TimeoutError too
            return None, f"{TIMEOUT_ERROR}: no answer within {self.delivery_timeout:g} s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record_delivery(
        self, subscription: Subscription, event: Event, attempt: int, status: int | None, error: str | None
    ) -> None:
        with self._lock:
            self._deliveries.append(
                {
                    "subscription": subscription.name,
                    "eventId": event.id,
                    "eventType": event.event_type,
                    "attempt": attempt,
                    "statusCode": status,
                    "error": error,
                    "timed_out": bool(error and error.startswith(TIMEOUT_ERROR)),
                    "time": utc_text(self._clock.now()),
                }
            )

    def _dead_letter(
        self,
        subscription: Subscription,
        event: Event,
        attempts: int,
        status: int | None,
        error: str | None,
        reason: str,
    ) -> None:
        with self._lock:
            self._deadletters.append(
                {
                    **event.envelope(subscription.schema),
                    "subscription": subscription.name,
                    "deadLetterReason": reason,
                    "deliveryAttempts": attempts,
                    "lastDeliveryOutcome": str(status) if status is not None else (error or "unknown"),
                    "lastHttpStatusCode": status,
                    "deadLetterTime": utc_text(self._clock.now()),
                }
            )

    # ---------------------------------------------------------------------------------------------- subscriptions
    def add_subscription(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace) a subscription from configuration, after the handshake unless `validate` is false.

        Blocks until the handshake is done. Called on a running event loop, the handshake runs on a helper thread
        (the loop is held meanwhile, so the endpoint must not be served by that same loop: there, await
        `create_subscription` instead). `validate: false` is an emulator-only escape hatch for wiring an endpoint
        that starts later; Event Grid itself always validates.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.create_subscription(spec))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as helper:
            return helper.submit(asyncio.run, self.create_subscription(spec)).result()

    async def create_subscription(self, spec: dict[str, Any]) -> dict[str, Any]:
        subscription = Subscription.from_spec(spec)
        if spec.get("validate", True):
            await self._handshake(subscription)
        with self._lock:
            self._subscriptions[subscription.name] = subscription
        return subscription.to_dict()

    def delete_subscription(self, name: str) -> bool:
        with self._lock:
            return self._subscriptions.pop(name, None) is not None

    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.to_dict() for s in self._subscriptions.values()]

    async def _handshake(self, subscription: Subscription) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            try:
                if subscription.schema == CLOUDEVENT_SCHEMA:
                    await self._cloudevents_handshake(session, subscription)
                else:
                    await self._eventgrid_handshake(session, subscription)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SubscriptionError(
                    f"endpoint: validation handshake with {subscription.endpoint} failed: {type(exc).__name__}: {exc}"
                ) from exc

    async def _eventgrid_handshake(self, session: aiohttp.ClientSession, subscription: Subscription) -> None:
        code = str(uuid.uuid4()).upper()
        event = {
            "id": str(uuid.uuid4()),
            "topic": subscription.topic or self.topic_id,
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": f"https://emulator.eventgrid.local/eventsubscriptions/{subscription.name}/"
                f"validate?id={code}",
            },
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": utc_text(self._clock.now()),
            "metadataVersion": "1",
            "dataVersion": "2",
        }
        headers = {
            "aeg-event-type": "SubscriptionValidation",
            "aeg-subscription-name": subscription.name.upper(),
            "aeg-delivery-count": "0",
            "aeg-metadata-version": "1",
            "aeg-data-version": "2",
        }
        async with session.post(subscription.endpoint, json=[event], headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise SubscriptionError(
                    f"endpoint: validation handshake failed: {subscription.endpoint} answered {response.status} "
                    'to the SubscriptionValidation event (expected 200 with {"validationResponse": code})'
                )
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        returned = answer.get("validationResponse") if isinstance(answer, dict) else None
        if returned != code:
            raise SubscriptionError(
                f"endpoint: validation handshake failed: {subscription.endpoint} did not echo the validation code "
                f'(expected body {{"validationResponse": "{code}"}}, got {text[:200]!r})'
            )

    async def _cloudevents_handshake(self, session: aiohttp.ClientSession, subscription: Subscription) -> None:
        headers = {"WebHook-Request-Origin": VALIDATION_ORIGIN}
        async with session.options(subscription.endpoint, headers=headers) as response:
            allowed = response.headers.get("WebHook-Allowed-Origin", "")
            if response.status != 200 or allowed not in (VALIDATION_ORIGIN, "*"):
                raise SubscriptionError(
                    f"endpoint: CloudEvents validation handshake failed: OPTIONS {subscription.endpoint} answered "
                    f"{response.status} with WebHook-Allowed-Origin {allowed!r} (expected 200 and "
                    f"{VALIDATION_ORIGIN!r} or '*')"
                )

    # ------------------------------------------------------------------------------------------------ inspection
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e.to_record() for e in self._events]

    def topic_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._topic_events]

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def stats(self) -> dict[str, int]:
        """Deliveries made, how many timed out, and how many were made again because the previous one timed out."""
        with self._lock:
            deliveries = list(self._deliveries)
        timed_out = {(d["subscription"], d["eventId"], d["attempt"]) for d in deliveries if d.get("timed_out")}
        return {
            "deliveries": len(deliveries),
            "timeouts": len(timed_out),
            "redeliveries_after_timeout": sum(
                1 for d in deliveries if (d["subscription"], d["eventId"], d["attempt"] - 1) in timed_out
            ),
        }

    def deadletters(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deadletters]

    def receive_topic_events(self, content_type: str, body: bytes) -> int:
        """What `POST /api/events` does once the key is checked: validate all, keep, forward. Returns the count."""
        if len(body) > MAX_PUBLISH_BYTES:
            raise InvalidEvent("body: larger than 1 MB")  # the route turns this into 413
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise InvalidEvent(f"body: not valid JSON ({exc})") from exc
        now = self._clock.now()
        if content_type == "application/cloudevents+json":
            items = [payload]
            parse = "cloud"
        else:
            if not isinstance(payload, list):
                raise InvalidEvent("body: must be a JSON array of events")
            items = payload
            is_cloud = content_type == "application/cloudevents-batch+json" or any(
                isinstance(i, dict) and "specversion" in i for i in items
            )
            parse = "cloud" if is_cloud else "eventgrid"
        if not items:
            raise InvalidEvent("body: no events")
        events = [
            parse_cloud_event(item, f"events[{i}]", self.topic_id, now)
            if parse == "cloud"
            else parse_eventgrid_event(item, f"events[{i}]", self.topic_id)
            for i, item in enumerate(items)
        ]
        with self._lock:
            self._topic_events.extend(dict(i) for i in items)
        for event in events:
            self._publish(event)
        return len(events)

    # ---------------------------------------------------------------------------------------- snapshot / restore
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(
                json.dumps(
                    {
                        "subscriptions": [s.to_dict() for s in self._subscriptions.values()],
                        "events": [e.to_record() for e in self._events],
                        "topic_events": self._topic_events,
                        "deliveries": self._deliveries,
                        "deadletters": self._deadletters,
                    }
                )
            )

    def restore(self, data: dict[str, Any]) -> None:
        subscriptions = [Subscription.from_spec(s) for s in data.get("subscriptions", [])]
        with self._lock:
            self._subscriptions = {s.name: s for s in subscriptions}
            self._events = [Event.from_record(e) for e in data.get("events", [])]
            self._topic_events = json.loads(json.dumps(data.get("topic_events", [])))
            self._deliveries = json.loads(json.dumps(data.get("deliveries", [])))
            self._deadletters = json.loads(json.dumps(data.get("deadletters", [])))
            self._pending = []
        self._drop_pending_retries()

    def reset(self, *, keep_subscriptions: bool = False) -> None:
        with self._lock:
            if not keep_subscriptions:
                self._subscriptions = {}
            self._events, self._topic_events, self._deliveries, self._deadletters = [], [], [], []
            self._pending = []
        self._drop_pending_retries()

    def _drop_pending_retries(self) -> None:
        with self._lock:
            loop = self._loop
        if loop is None:
            return

        def cancel_all() -> None:
            for task in list(self._tasks):
                task.cancel()

        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to cancel
            loop.call_soon_threadsafe(cancel_all)


# ------------------------------------------------------------------------------------------------------ HTTP API
def _bad(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def eventgrid_admin_routes(eg: EventGrid) -> list[web.RouteDef]:
    """Inspection and control; paths without prefix (the server mounts them under /admin/eventgrid)."""

    async def create_subscription(request: web.Request) -> web.Response:
        try:
            spec = await request.json()
        except ValueError:
            return _bad(400, "InvalidRequest", "body: not valid JSON")
        existed = isinstance(spec, dict) and any(s["name"] == spec.get("name") for s in eg.subscriptions())
        try:
            created = await eg.create_subscription(spec)
        except SubscriptionError as exc:
            return _bad(400, "InvalidSubscription", str(exc))
        return web.json_response(created, status=200 if existed else 201)

    async def list_subscriptions(request: web.Request) -> web.Response:
        return web.json_response({"value": eg.subscriptions()})

    async def get_subscription(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found = next((s for s in eg.subscriptions() if s["name"] == name), None)
        if found is None:
            return _bad(404, "NotFound", f"subscription {name!r} does not exist")
        return web.json_response(found)

    async def delete_subscription(request: web.Request) -> web.Response:
        return web.Response(status=200 if eg.delete_subscription(request.match_info["name"]) else 204)

    async def list_deliveries(request: web.Request) -> web.Response:
        items = eg.deliveries()
        for key in ("subscription", "eventId", "eventType"):
            if key in request.query:
                items = [d for d in items if d[key] == request.query[key]]
        return web.json_response({"value": items})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(eg.stats())

    async def list_deadletters(request: web.Request) -> web.Response:
        return web.json_response({"value": eg.deadletters()})

    async def list_events(request: web.Request) -> web.Response:
        items = eg.events()
        if "eventType" in request.query:
            items = [e for e in items if e["eventType"] == request.query["eventType"]]
        return web.json_response({"value": items})

    async def inject_event(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _bad(400, "InvalidRequest", "body: not valid JSON")
        if not isinstance(body, dict):
            return _bad(400, "InvalidRequest", "body: must be {topic, event_type, subject, data}")
        for name in ("topic", "event_type", "subject"):
            if not isinstance(body.get(name), str) or (name != "subject" and not body[name]):
                return _bad(400, "InvalidField", f"{name}: required, a string")
        if not isinstance(body.get("data", {}), dict):
            return _bad(400, "InvalidField", "data: must be a JSON object")
        record = eg.inject(
            topic=body["topic"], event_type=body["event_type"], subject=body["subject"], data=body.get("data", {})
        )
        return web.json_response(record, status=201)

    async def list_topic_events(request: web.Request) -> web.Response:
        return web.json_response({"value": eg.topic_events()})

    return [
        web.post("/subscriptions", create_subscription),
        web.get("/subscriptions", list_subscriptions),
        web.get("/subscriptions/{name}", get_subscription),
        web.delete("/subscriptions/{name}", delete_subscription),
        web.get("/deliveries", list_deliveries),
        web.get("/deadletters", list_deadletters),
        web.get("/stats", stats),
        web.get("/events", list_events),
        web.post("/events", inject_event),
        web.get("/topic-events", list_topic_events),
    ]


def eventgrid_topic_routes(eg: EventGrid) -> list[web.RouteDef]:
    """The custom topic's publish endpoint, as `EventGridPublisherClient` calls it (key in `aeg-sas-key`)."""

    async def publish(request: web.Request) -> web.Response:
        if request.headers.get("aeg-sas-key") != eg.topic_key:
            return _bad(
                401,
                "Unauthorized",
                f"The request authorization key is not authorized for {request.host}. "
                "Send the topic's access key in the aeg-sas-key header.",
            )
        body = await request.read()
        try:
            eg.receive_topic_events(request.content_type, body)
        except InvalidEvent as exc:
            if len(body) > MAX_PUBLISH_BYTES:
                return _bad(413, "RequestEntityTooLarge", str(exc))
            return _bad(400, "BadRequest", str(exc))
        return web.Response(status=200)

    return [web.post("/api/events", publish)]
