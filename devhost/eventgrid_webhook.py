"""`/runtime/webhooks/eventgrid?functionName=X&code=<key>`: the Event Grid extension's webhook, as the Functions host
serves it.

- a missing or wrong key -> 401 (the host checks the `eventgrid_extension` system key before the extension runs);
- an unknown function (or one that is not an Event Grid trigger) -> 404;
- OPTIONS with WebHook-Request-Origin: the CloudEvents abuse-protection handshake, answered with
  WebHook-Allowed-Origin;
- `aeg-event-type: SubscriptionValidation` -> 200 {"validationResponse": <validationCode>}, answered by the host;
- `aeg-event-type: Notification` with one event object or an array (Event Grid schema or CloudEvents 1.0; the body
  is parsed as JSON whatever the content type, as the extension does) -> the function runs once per event, all
  events concurrently; 202 when every run succeeded, 500 when any failed (Event Grid then redelivers);
- `aeg-event-type: SubscriptionDeletion` (or the older Unsubscribe) -> 202;
- a missing or unknown aeg-event-type, or a body that is not an event or an array of events (`null`, `{}`, an
  object without the schema's required attributes) -> 400 with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from aiohttp import web

from devhost import trigger_inputs
from devhost.app_loader import EVENTGRID_TRIGGER
from devhost.host_state import STATE
from devhost.keys import presented_key

PATH = "/runtime/webhooks/eventgrid"


def register(router: web.UrlDispatcher) -> None:
    router.add_route("*", PATH, handle)


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=400)


# What makes a JSON object an event: the schema's required attributes (Event Grid schema; CloudEvents 1.0).
_EVENTGRID_REQUIRED = ("id", "eventType", "subject", "eventTime")
_CLOUDEVENT_REQUIRED = ("specversion", "id", "source", "type")


def _not_an_event(event: object) -> str | None:
    """Why `event` is neither an Event Grid event nor a CloudEvent, or None when it is one of them."""
    if not isinstance(event, dict):
        return f"must be a JSON object, not {type(event).__name__ if event is not None else 'null'}"
    required = _CLOUDEVENT_REQUIRED if "specversion" in event else _EVENTGRID_REQUIRED
    missing = [name for name in required if not isinstance(event.get(name), str)]
    empty = [name for name in required if name != "subject" and event.get(name) == ""]
    if not missing and not empty:
        return None
    schema = "a CloudEvent" if "specversion" in event else "an Event Grid event"
    wrong = ([f"{', '.join(missing)} missing or not a string"] if missing else []) + (
        [f"{', '.join(empty)} empty"] if empty else []
    )
    return f"not {schema}: {'; '.join(wrong)}"


def _events(body: bytes) -> list[dict[str, Any]] | str:
    """The delivered events, or a message saying why the body is not an event or an array of events.

    `null`, a number, a string or `{}` is nothing Event Grid sends: answering 202 would tell the sender a delivery
    was handled when no function ran, so it is a bad request, naming the first event that is wrong.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the body is not valid JSON"
    if document is None:
        return "the body is JSON null, not an event or an array of events"
    events = document if isinstance(document, list) else [document]
    if not events:
        return "the body holds no events"
    for index, event in enumerate(events):
        reason = _not_an_event(event)
        if reason:
            where = f"events[{index}]" if isinstance(document, list) else "the event"
            return f"{where}: {reason}"
    return events


async def handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not state.keys.allows_eventgrid(presented_key(request.query, request.headers)):
        return web.Response(status=401)
    spec = state.find(request.query.get("functionName"))
    if spec is None or spec.trigger_type != EVENTGRID_TRIGGER:
        return web.Response(status=404)
    if request.method == "OPTIONS":
        origin = request.headers.get("WebHook-Request-Origin")
        if not origin:
            return _bad_request("OPTIONS handshake needs a WebHook-Request-Origin header")
        return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
    if request.method != "POST":
        return web.Response(status=405, headers={"Allow": "POST, OPTIONS"})
    event_type = request.headers.get("aeg-event-type", "").strip().lower()
    if event_type in ("subscriptiondeletion", "unsubscribe"):
        return web.Response(status=202)
    if event_type not in ("subscriptionvalidation", "notification"):
        return _bad_request("the aeg-event-type header must be SubscriptionValidation or Notification")
    events = _events(await request.read())
    if isinstance(events, str):
        return _bad_request(events)
    if event_type == "subscriptionvalidation":
        data = events[0].get("data")
        code = data.get("validationCode") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code:
            return _bad_request("a SubscriptionValidation event needs data.validationCode")
        return web.json_response({"validationResponse": code})
    fired_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")
    outcomes = await asyncio.gather(
        *(
            state.invoker.invoke(
                spec,
                reason=f"EventGrid trigger fired at {fired_at}",
                build_input=lambda event=event: trigger_inputs.eventgrid_event(event),
            )
            for event in events
        )
    )
    if all(outcome.succeeded for outcome in outcomes):
        return web.Response(status=202)
    return web.Response(status=500, text=f"Exception while executing function: Functions.{spec.name}")
