"""Event Grid emulator: system topics fed by the other emulators, one custom topic, webhook subscriptions.

It behaves like Event Grid where the app can tell the difference: a subscription is only created after the endpoint
passes the validation handshake (emulators.eventgrid_handshake); each event goes in its own request; 200-204 is
success; 400, 401, 403 and 413 are not retried (the event is dead-lettered at once); anything else, timeouts and
refused connections included, is retried on Event Grid's schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h,
3 h, 6 h, then every 12 h) until `max_attempts` or the time to live runs out, then dead-lettered. Deliveries of
different events run concurrently, so order is not guaranteed, as in Azure. One attempt, and the records it leaves,
are emulators.eventgrid_delivery.

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
from typing import Any

import aiohttp

from emulators.core import MovableClock
from emulators.eventgrid_delivery import NOT_RETRIED, dead_letter_record, delivery_record, post_event
from emulators.eventgrid_handshake import validate_endpoint
from emulators.eventgrid_schema import (
    Event,
    InvalidEvent,
    default_data_version,
    parse_cloud_event,
    parse_eventgrid_event,
    utc_text,
)
from emulators.eventgrid_subscriptions import Subscription, SubscriptionError

__all__ = ["EventGrid", "Subscription", "SubscriptionError"]

MAX_PUBLISH_BYTES = 1_048_576


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
        return await post_event(self._session, subscription, event, attempt, delivery_timeout=self.delivery_timeout)

    def _record_delivery(
        self, subscription: Subscription, event: Event, attempt: int, status: int | None, error: str | None
    ) -> None:
        record = delivery_record(subscription, event, attempt, status, error, now=utc_text(self._clock.now()))
        with self._lock:
            self._deliveries.append(record)

    def _dead_letter(
        self,
        subscription: Subscription,
        event: Event,
        attempts: int,
        status: int | None,
        error: str | None,
        reason: str,
    ) -> None:
        record = dead_letter_record(
            subscription, event, attempts, status, error, reason, now=utc_text(self._clock.now())
        )
        with self._lock:
            self._deadletters.append(record)

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
            await validate_endpoint(subscription, topic_id=self.topic_id, clock=self._clock)
        with self._lock:
            self._subscriptions[subscription.name] = subscription
        return subscription.to_dict()

    def delete_subscription(self, name: str) -> bool:
        with self._lock:
            return self._subscriptions.pop(name, None) is not None

    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.to_dict() for s in self._subscriptions.values()]

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
