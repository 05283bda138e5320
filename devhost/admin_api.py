"""The host's admin API, the parts a local run needs; every route requires the master key, as in Azure.

- `POST /admin/functions/{name}` with {"input": "..."}: runs a non-HTTP function in the background and answers 202
  (timer: TimerRequest with past_due False, skipped if that timer is running; queue: the input as the message body;
  Event Grid: the input parsed as one event). Unknown function -> 404; an HTTP function -> 400 (call its route).
- `GET /admin/functions`, `GET /admin/functions/{name}`: what is loaded (no secrets).
- `GET /admin/host/status`: {"state": "Running", ...}.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from aiohttp import web

from devhost import trigger_inputs
from devhost.app_loader import EVENTGRID_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER, FunctionSpec
from devhost.host_state import STATE, HostState
from devhost.invocation import HOST_API_REASON
from devhost.keys import AuthLevel, presented_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/admin/host/status", host_status)
    router.add_get("/admin/functions", list_functions)
    router.add_get("/admin/functions/{name}", show_function)
    router.add_post("/admin/functions/{name}", run_function)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _admin_only(handler: Handler) -> Handler:
    """Every admin route needs the master key (401 otherwise), as in Azure."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not request.app[STATE].keys.allows(AuthLevel.ADMIN, presented_key(request.query, request.headers)):
            return web.Response(status=401)
        return await handler(request)

    return guarded


def _describe(state: HostState, spec: FunctionSpec) -> dict[str, Any]:
    entry = spec.describe()
    if spec.route is not None:
        entry["invoke_url_template"] = f"{state.base_url}/{_prefixed(state, spec.route.template)}"
    else:
        entry["invoke_url_template"] = f"{state.base_url}/admin/functions/{spec.name}"
    return entry


def _prefixed(state: HostState, route: str) -> str:
    prefix = state.config.route_prefix
    return f"{prefix}/{route}" if prefix else route


@_admin_only
async def host_status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "id": "devhost",
            "state": "Running",
            "version": f"devhost (azure-functions {version('azure-functions')})",
            "processUptime": round((time.monotonic() - state.started_monotonic) * 1000),
            "functions": len(state.functions),
        }
    )


@_admin_only
async def list_functions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response([_describe(state, spec) for spec in state.functions])


@_admin_only
async def show_function(request: web.Request) -> web.Response:
    state = request.app[STATE]
    spec = state.find(request.match_info["name"])
    if spec is None:
        return web.Response(status=404)
    return web.json_response(_describe(state, spec))


@_admin_only
async def run_function(request: web.Request) -> web.Response:
    state = request.app[STATE]
    spec = state.find(request.match_info["name"])
    if spec is None:
        return web.Response(status=404)
    if spec.is_http:
        return _error(400, "HttpFunction", f"{spec.name} is an HTTP function: call its route instead")
    raw = await request.read()
    try:
        document = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return _error(400, "InvalidBody", 'the body must be JSON like {"input": "..."}')
    if not isinstance(document, dict):
        return _error(400, "InvalidBody", 'the body must be a JSON object like {"input": "..."}')
    given = document.get("input", "")
    text = given if isinstance(given, str) else json.dumps(given)
    if spec.trigger_type == TIMER_TRIGGER:
        runner = state.timers.get(spec.name)
        now = dt.datetime.now(dt.UTC)
        if runner is not None:
            state.spawn(runner.run_now(reason=HOST_API_REASON))
            return web.Response(status=202)
        build = functools.partial(
            trigger_inputs.timer_request, past_due=False, last=None, next_run=None, now=now, monitored=False
        )
    elif spec.trigger_type == QUEUE_TRIGGER:
        now = dt.datetime.now(dt.UTC)
        build = functools.partial(
            trigger_inputs.queue_message,
            body=text.encode("utf-8"),
            message_id=str(uuid.uuid4()),
            dequeue_count=1,
            insertion_time=now,
            expiration_time=now + dt.timedelta(days=7),
            next_visible_time=None,
            pop_receipt=None,
        )
    elif spec.trigger_type == EVENTGRID_TRIGGER:
        try:
            event = json.loads(text)
        except ValueError:
            return _error(400, "InvalidInput", "input must be one event as a JSON object (string)")
        if not isinstance(event, dict):
            return _error(400, "InvalidInput", "input must be one event as a JSON object")
        build = functools.partial(trigger_inputs.eventgrid_event, event)
    else:  # pragma: no cover - app_loader only indexes the triggers above
        return _error(400, "Unsupported", f"trigger {spec.trigger_type} cannot be run from the admin API")
    state.spawn(state.invoker.invoke(spec, reason=HOST_API_REASON, build_input=build))
    return web.Response(status=202)
