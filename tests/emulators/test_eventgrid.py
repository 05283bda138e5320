"""Event Grid emulator over the wire: handshake, both delivery schemas, retries, dead letters, the custom topic
(driven with the unchanged EventGridPublisherClient), inspection and snapshot/restore.

The harness here (a loop thread serving aiohttp apps, and a scripted webhook receiver) is shared with the ARM tests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

from emulators.core import MovableClock
from emulators.eventgrid import EventGrid, SubscriptionError
from emulators.eventgrid_http import eventgrid_admin_routes, eventgrid_topic_routes

TOPIC_KEY = "test-topic-key"
SUB = "0b4f6c8e-2d3a-4e5f-9a8b-7c6d5e4f3a2b"
TOPIC_ID = f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.EventGrid/topics/cmk-alerts"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kv-one"


# ------------------------------------------------------------------------------------------------------- harness
class LoopThread:
    """An asyncio loop on a background thread: serves aiohttp apps on free ports and runs coroutines for tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> int:
        async def start() -> int:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            sock = socket.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(("127.0.0.1", 0))
            await web.SockSite(runner, sock, ssl_context=ssl_context).start()
            self._runners.append(runner)
            return sock.getsockname()[1]

        return self.run(start())

    def close(self) -> None:
        async def cleanup() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()

        self.run(cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Receiver:
    """A webhook endpoint: answers the handshakes, records every request, answers notifications as scripted."""

    statuses: list[int] = field(default_factory=list)  # status per notification, in order; then 200
    validate: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def notifications(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["headers"].get("aeg-event-type") == "Notification"]

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            body = await request.text()
            self.requests.append(
                {"method": request.method, "headers": dict(request.headers), "body": body, "at": time.monotonic()}
            )
            if request.method == "OPTIONS":
                origin = request.headers.get("WebHook-Request-Origin", "")
                return web.Response(headers={"WebHook-Allowed-Origin": origin} if self.validate else {})
            if request.headers.get("aeg-event-type") == "SubscriptionValidation":
                if not self.validate:
                    return web.json_response({"nope": True})
                code = json.loads(body)[0]["data"]["validationCode"]
                return web.json_response({"validationResponse": code})
            status = self.statuses.pop(0) if self.statuses else 200
            return web.Response(status=status)

        app = web.Application()
        app.router.add_route("*", "/hook", hook)
        return app


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


# ------------------------------------------------------------------------------------------------------ fixtures
@dataclass
class GridUnderTest:
    grid: EventGrid
    loop: LoopThread
    clock: MovableClock
    base: str  # http://127.0.0.1:port (topic endpoint at /api/events, admin under /admin/eventgrid)

    def receiver(self, **kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        receiver.port = self.loop.serve(receiver.app())
        return receiver

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.base}/admin/eventgrid{path}", body)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def eg(loop_thread: LoopThread) -> Iterator[GridUnderTest]:
    clock = MovableClock()
    grid = EventGrid(clock=clock, topic_key=TOPIC_KEY, topic_id=TOPIC_ID, retry_scale=0.01)
    app = web.Application()
    admin = web.Application()
    admin.add_routes(eventgrid_admin_routes(grid))
    app.add_subapp("/admin/eventgrid", admin)
    app.add_routes(eventgrid_topic_routes(grid))
    port = loop_thread.serve(app)
    loop_thread.run(grid.start())
    yield GridUnderTest(grid, loop_thread, clock, f"http://127.0.0.1:{port}")
    loop_thread.run(grid.stop())


# --------------------------------------------------------------------------------------------------------- tests
def test_subscription_needs_the_validation_handshake(eg: GridUnderTest) -> None:
    good, bad = eg.receiver(), eg.receiver(validate=False)

    status, created = eg.admin("POST", "/subscriptions", {"name": "good", "endpoint": good.url, "topic": VAULT_ID})
    assert status == 201 and created["name"] == "good"
    validation = good.requests[0]
    assert validation["headers"]["aeg-event-type"] == "SubscriptionValidation"
    assert json.loads(validation["body"])[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"

    status, error = eg.admin("POST", "/subscriptions", {"name": "bad", "endpoint": bad.url})
    assert status == 400 and "validation" in error["error"]["message"]
    assert [s["name"] for s in eg.admin("GET", "/subscriptions")[1]["value"]] == ["good"]

    status, _ = eg.admin("POST", "/subscriptions", {"name": "down", "endpoint": "http://127.0.0.1:9/hook"})
    assert status == 400


def test_bad_subscription_fields_are_named(eg: GridUnderTest) -> None:
    status, error = eg.admin("POST", "/subscriptions", {"name": "x", "endpoint": "ftp://nowhere"})
    assert status == 400 and error["error"]["message"].startswith("endpoint:")
    status, error = eg.admin("POST", "/subscriptions", {"name": "x", "endpoint": "http://a/", "schema": "Custom"})
    assert status == 400 and error["error"]["message"].startswith("schema:")
    with pytest.raises(SubscriptionError, match="max_attempts"):
        eg.grid.add_subscription({"name": "x", "endpoint": "http://a/", "max_attempts": 0, "validate": False})


def test_add_subscription_from_config_validates_off_the_loop(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    created = eg.grid.add_subscription({"name": "cfg", "endpoint": receiver.url, "event_types": ["A.B"]})
    assert created["event_types"] == ["A.B"]
    assert receiver.requests[0]["headers"]["aeg-event-type"] == "SubscriptionValidation"


def test_event_grid_schema_delivery_one_event_per_request(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.grid.add_subscription({"name": "kv", "endpoint": receiver.url, "topic": VAULT_ID})
    other_vault = VAULT_ID + "-two"  # same prefix, different vault: must not match the topic filter

    for n in range(3):
        eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyNewVersionCreated", subject=f"k{n}", data={})
    eg.grid.emit(topic=other_vault, event_type="Microsoft.KeyVault.KeyNewVersionCreated", subject="x", data={})

    notes = wait_for(lambda: len(receiver.notifications()) == 3 and receiver.notifications())
    time.sleep(0.1)
    assert len(receiver.notifications()) == 3
    first = notes[0]
    assert first["headers"]["Content-Type"].startswith("application/json")
    assert first["headers"]["aeg-subscription-name"] == "KV"
    assert first["headers"]["aeg-delivery-count"] == "0"
    assert first["headers"]["aeg-metadata-version"] == "1" and first["headers"]["aeg-data-version"] == "1"
    body = json.loads(first["body"])
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {
        "id",
        "topic",
        "subject",
        "eventType",
        "eventTime",
        "data",
        "dataVersion",
        "metadataVersion",
    }
    assert sorted(json.loads(n["body"])[0]["subject"] for n in notes) == ["k0", "k1", "k2"]


def test_cloudevents_subscription_uses_options_handshake_and_structured_mode(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.grid.add_subscription({"name": "ce", "endpoint": receiver.url, "schema": "CloudEventSchemaV1_0"})
    assert receiver.requests[0]["method"] == "OPTIONS"
    assert receiver.requests[0]["headers"]["WebHook-Request-Origin"] == "eventgrid.azure.net"

    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyExpired", subject="k", data={"ObjectName": "k"})
    note = wait_for(receiver.notifications)[0]
    assert note["headers"]["Content-Type"].startswith("application/cloudevents+json")
    event = json.loads(note["body"])
    assert event["specversion"] == "1.0" and event["source"] == VAULT_ID and event["type"].endswith("KeyExpired")
    assert event["data"] == {"ObjectName": "k"}

    refusing = eg.receiver(validate=False)
    with pytest.raises(SubscriptionError, match="WebHook-Allowed-Origin"):
        eg.grid.add_subscription({"name": "ce2", "endpoint": refusing.url, "schema": "CloudEventSchemaV1_0"})


def test_failures_are_retried_then_delivered(eg: GridUnderTest) -> None:
    receiver = eg.receiver(statuses=[500, 503, 429])
    eg.grid.add_subscription({"name": "flaky", "endpoint": receiver.url})

    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyNearExpiry", subject="k", data={})
    wait_for(lambda: len(receiver.notifications()) == 4, timeout=15)

    counts = [n["headers"]["aeg-delivery-count"] for n in receiver.notifications()]
    assert counts == ["0", "1", "2", "3"]
    assert len({json.loads(n["body"])[0]["id"] for n in receiver.notifications()}) == 1  # the same event each time
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.notifications(), receiver.notifications()[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.29  # 10 s and 30 s, scaled by 0.01
    deliveries = eg.admin("GET", "/deliveries?subscription=flaky")[1]["value"]
    assert [(d["attempt"], d["statusCode"]) for d in deliveries] == [(1, 500), (2, 503), (3, 429), (4, 200)]
    assert eg.admin("GET", "/deadletters")[1]["value"] == []


def test_bad_request_is_dead_lettered_without_retry(eg: GridUnderTest) -> None:
    receiver = eg.receiver(statuses=[400])
    eg.grid.add_subscription({"name": "strict", "endpoint": receiver.url})

    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyExpired", subject="k", data={})
    letters = wait_for(lambda: eg.admin("GET", "/deadletters")[1]["value"])
    time.sleep(0.3)  # a retry would have come after 0.1 s
    assert len(receiver.notifications()) == 1
    assert letters[0]["deadLetterReason"] == "NonRetriableStatusCode" and letters[0]["lastHttpStatusCode"] == 400
    assert letters[0]["eventType"] == "Microsoft.KeyVault.KeyExpired" and letters[0]["deliveryAttempts"] == 1


def test_gives_up_after_max_attempts_and_on_refused_connections(eg: GridUnderTest) -> None:
    receiver = eg.receiver(statuses=[500] * 10)
    eg.grid.add_subscription({"name": "busy", "endpoint": receiver.url, "max_attempts": 3, "retry_delays": [0.01]})
    eg.grid.add_subscription({"name": "gone", "endpoint": "http://127.0.0.1:9/", "validate": False, "max_attempts": 2})

    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyExpired", subject="k", data={})
    letters = wait_for(lambda: len(eg.grid.deadletters()) == 2 and eg.grid.deadletters())
    by_name = {d["subscription"]: d for d in letters}
    assert by_name["busy"]["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert by_name["busy"]["deliveryAttempts"] == 3 and len(receiver.notifications()) == 3
    assert by_name["gone"]["lastHttpStatusCode"] is None and by_name["gone"]["deliveryAttempts"] == 2


def test_time_to_live_ends_retries(eg: GridUnderTest) -> None:
    receiver = eg.receiver(statuses=[500] * 10)
    # TTL 1 min scaled by 0.01 = 0.6 s; the schedule 0.1 + 0.3 + 0.6 s runs past it after the third attempt
    eg.grid.add_subscription({"name": "short", "endpoint": receiver.url, "ttl_minutes": 1})
    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyExpired", subject="k", data={})
    letter = wait_for(eg.grid.deadletters)[0]
    assert letter["deadLetterReason"] == "TimeToLiveExceeded" and letter["deliveryAttempts"] == 3


def test_event_type_and_subject_filters(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.grid.add_subscription(
        {
            "name": "f",
            "endpoint": receiver.url,
            "event_types": ["Microsoft.KeyVault.KeyNewVersionCreated"],
            "subject_begins_with": "cmk-",
        }
    )
    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyNewVersionCreated", subject="other", data={})
    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.SecretNewVersionCreated", subject="cmk-a", data={})
    eg.grid.emit(topic=VAULT_ID, event_type="Microsoft.KeyVault.KeyNewVersionCreated", subject="cmk-b", data={})
    wait_for(receiver.notifications)
    time.sleep(0.1)
    assert [json.loads(n["body"])[0]["subject"] for n in receiver.notifications()] == ["cmk-b"]


def test_emit_from_other_threads_never_blocks(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.grid.add_subscription({"name": "many", "endpoint": receiver.url})

    def burst(offset: int) -> None:
        for n in range(25):
            eg.grid.emit(topic=VAULT_ID, event_type="T", subject=f"{offset + n}", data={})

    started = time.monotonic()
    threads = [threading.Thread(target=burst, args=(i * 100,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 0.5
    wait_for(lambda: len(receiver.notifications()) == 100)
    assert len({json.loads(n["body"])[0]["subject"] for n in receiver.notifications()}) == 100


def test_events_emitted_before_start_are_delivered_after(loop_thread: LoopThread) -> None:
    grid = EventGrid(clock=MovableClock(), topic_key=TOPIC_KEY, topic_id=TOPIC_ID, retry_scale=0.01)
    receiver = Receiver()
    receiver.port = loop_thread.serve(receiver.app())
    grid.add_subscription({"name": "early", "endpoint": receiver.url})
    grid.emit(topic=VAULT_ID, event_type="T", subject="before-start", data={})
    loop_thread.run(grid.start())
    try:
        assert json.loads(wait_for(receiver.notifications)[0]["body"])[0]["subject"] == "before-start"
    finally:
        loop_thread.run(grid.stop())


def test_topic_endpoint_with_the_publisher_client(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.grid.add_subscription({"name": "alerts", "endpoint": receiver.url, "topic": TOPIC_ID})
    client = EventGridPublisherClient(f"{eg.base}/api/events", AzureKeyCredential(TOPIC_KEY))

    client.send([EventGridEvent(subject="keys/a", event_type="Cmk.Alert", data={"level": "high"}, data_version="1")])
    client.send(CloudEvent(source="/cmk-guardian", type="Cmk.Alert", data={"level": "low"}, subject="keys/b"))

    received = eg.admin("GET", "/topic-events")[1]["value"]
    assert [e.get("eventType", e.get("type")) for e in received] == ["Cmk.Alert", "Cmk.Alert"]
    assert received[1]["specversion"] == "1.0" and received[1]["source"] == "/cmk-guardian"
    notes = wait_for(lambda: len(receiver.notifications()) == 2 and receiver.notifications())
    delivered = sorted((json.loads(n["body"])[0] for n in notes), key=lambda e: e["subject"])
    assert [e["data"]["level"] for e in delivered] == ["high", "low"]
    assert all(e["topic"] == TOPIC_ID for e in delivered)

    wrong = EventGridPublisherClient(f"{eg.base}/api/events", AzureKeyCredential("wrong-key"))
    with pytest.raises(ClientAuthenticationError):
        wrong.send([EventGridEvent(subject="s", event_type="T", data={}, data_version="1")])
    assert len(eg.admin("GET", "/topic-events")[1]["value"]) == 2


def test_topic_endpoint_rejects_incomplete_events_naming_the_field(eg: GridUnderTest) -> None:
    url, key = f"{eg.base}/api/events", {"aeg-sas-key": TOPIC_KEY}
    event = {"id": "1", "subject": "s", "eventType": "T", "eventTime": "2025-01-01T00:00:00Z", "data": {}}
    status, error = http("POST", url, [event], key)
    assert status == 400 and "events[0].dataVersion" in error["error"]["message"]
    status, error = http("POST", url, [{**event, "dataVersion": "1", "eventTime": "yesterday"}], key)
    assert status == 400 and "events[0].eventTime" in error["error"]["message"]
    status, _ = http("POST", url, [{**event, "dataVersion": "1"}], key)
    assert status == 200
    status, _ = http("POST", url, [{**event, "dataVersion": "1"}])
    assert status == 401


def test_single_cloudevent_content_type(eg: GridUnderTest) -> None:
    request = urllib.request.Request(
        f"{eg.base}/api/events",
        data=json.dumps({"id": "9", "source": "/x", "type": "T", "specversion": "1.0"}).encode(),
        method="POST",
        headers={"Content-Type": "application/cloudevents+json; charset=utf-8", "aeg-sas-key": TOPIC_KEY},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert eg.grid.topic_events()[0]["id"] == "9"


def test_inject_and_inspect_events(eg: GridUnderTest) -> None:
    receiver = eg.receiver()
    eg.admin("POST", "/subscriptions", {"name": "all", "endpoint": receiver.url})
    status, record = eg.admin(
        "POST", "/events", {"topic": VAULT_ID, "event_type": "Microsoft.KeyVault.KeyNearExpiry", "subject": "k"}
    )
    assert status == 201 and record["origin"] == "admin"
    events = eg.admin("GET", "/events?eventType=Microsoft.KeyVault.KeyNearExpiry")[1]["value"]
    assert [e["id"] for e in events] == [record["id"]]
    assert json.loads(wait_for(receiver.notifications)[0]["body"])[0]["id"] == record["id"]
    status, error = eg.admin("POST", "/events", {"topic": VAULT_ID, "subject": "k"})
    assert status == 400 and error["error"]["message"].startswith("event_type")

    assert eg.admin("DELETE", "/subscriptions/all")[0] == 200
    assert eg.admin("DELETE", "/subscriptions/all")[0] == 204
    assert eg.admin("GET", "/subscriptions/all")[0] == 404


def test_snapshot_restore_and_reset(eg: GridUnderTest) -> None:
    receiver = eg.receiver(statuses=[400])
    eg.grid.add_subscription({"name": "keep", "endpoint": receiver.url, "event_types": ["T"], "max_attempts": 5})
    eg.grid.emit(topic=VAULT_ID, event_type="T", subject="s", data={"n": 1})
    wait_for(eg.grid.deadletters)
    saved = json.loads(json.dumps(eg.grid.snapshot()))  # must survive a JSON file

    eg.grid.reset()
    assert eg.grid.subscriptions() == [] and eg.grid.events() == [] and eg.grid.deadletters() == []

    eg.grid.restore(saved)
    assert eg.grid.snapshot() == saved
    assert eg.grid.subscriptions()[0]["max_attempts"] == 5
    assert eg.grid.events()[0]["data"] == {"n": 1}

    eg.grid.reset(keep_subscriptions=True)
    assert [s["name"] for s in eg.grid.subscriptions()] == ["keep"] and eg.grid.deliveries() == []
