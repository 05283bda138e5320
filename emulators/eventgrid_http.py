"""Event Grid emulator's HTTP API: the admin routes (mounted under /admin/eventgrid) and the custom topic's publish
endpoint; the behaviour itself is emulators.eventgrid's."""

from __future__ import annotations

from aiohttp import web

from emulators.eventgrid import MAX_PUBLISH_BYTES, EventGrid
from emulators.eventgrid_schema import InvalidEvent
from emulators.eventgrid_subscriptions import SubscriptionError


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
