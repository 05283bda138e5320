"""The aiohttp application: HTTP-triggered functions under /{routePrefix} (default /api), plus the Event Grid webhook
and the admin API (registered by their own modules).

Request handling follows the host: find the route (most specific template first), check the method (devhost answers
405 with an Allow header where Azure's routing would answer 404), check the key for the function's auth level (401),
then invoke. A function that raises gives 500 with an empty body, as in Azure.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from devhost import admin_api, eventgrid_webhook, trigger_inputs
from devhost.host_state import STATE, HostState
from devhost.invocation import HOST_API_REASON
from devhost.keys import presented_key

MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the host's default maxRequestLength is about 100 MB


def build_application(state: HostState) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[STATE] = state
    eventgrid_webhook.register(app.router)
    admin_api.register(app.router)
    app.router.add_get("/", home)
    app.router.add_route("*", "/{tail:.*}", http_function)
    return app


async def home(request: web.Request) -> web.Response:
    """Core Tools answers the root with a 'your app is running' page; a line of text does the same job."""
    state = request.app[STATE]
    if state.config.route_prefix == "":
        return await http_function(request)
    return web.Response(text="devhost: your Functions app is up and running\n")


async def http_function(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    prefix = state.config.route_prefix
    path = request.path
    if prefix:
        lowered = path.lower()
        if not (lowered == f"/{prefix.lower()}" or lowered.startswith(f"/{prefix.lower()}/")):
            return web.Response(status=404)
        path = path[len(prefix) + 1 :]
    matches = []
    for spec in state.http_functions:
        assert spec.route is not None
        params = spec.route.match(path)
        if params is not None:
            matches.append((spec, params))
    if not matches:
        return web.Response(status=404)
    method = request.method.upper()
    allowed = [(spec, params) for spec, params in matches if method in spec.methods]
    if not allowed:
        methods = sorted({m for spec, _ in matches for m in spec.methods})
        return web.Response(status=405, headers={"Allow": ", ".join(methods)})
    spec, route_params = allowed[0]
    assert spec.auth_level is not None
    if not state.keys.allows(spec.auth_level, presented_key(request.query, request.headers)):
        return web.Response(status=401)
    body = await request.read()
    outcome = await state.invoker.invoke(
        spec,
        reason=HOST_API_REASON,
        build_input=lambda: trigger_inputs.http_request(
            method=method,
            url=str(request.url),
            headers=request.headers.items(),
            query=request.query.items(),
            route_params=route_params,
            body=body,
        ),
        convert_result=trigger_inputs.http_reply,
    )
    if not outcome.succeeded:
        return web.Response(status=500)
    reply: trigger_inputs.HttpReply = outcome.value
    return web.Response(status=reply.status, body=reply.body, headers=CIMultiDict(reply.headers))
