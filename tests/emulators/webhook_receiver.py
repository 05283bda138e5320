"""A tiny Event Grid webhook for tests: answers the validation handshake and keeps every event it is sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


class WebhookReceiver:
    """Runs its own event loop in a thread on 127.0.0.1 (free port); use as a context manager."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-receiver", daemon=True)
        self.url = ""

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("webhook receiver did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/events", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/events"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        for event in items:
            if event.get("eventType") == VALIDATION_EVENT:
                return web.json_response({"validationResponse": event["data"]["validationCode"]})
        with self._lock:
            self.events.extend(items)
        return web.Response(status=200)

    def of_type(self, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("eventType", "").endswith(suffix)]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.events)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise AssertionError(f"webhook: condition not met within {timeout}s; received {snapshot}")
