"""The emulators' admin API (raw JSON under /admin on the ARM listener): time travel, faults, latency, throttling,
counters and reset (each consumer's availability history is `/admin/consumers`, in emulators.consumers; RBAC
propagation is `/admin/rbac/propagation`, in emulators.clock_walk). A clock move walks minute by minute while role
assignment changes are pending, so consumers check their keys at every emulated minute of a window. Tests and
the local runner drive the emulators through it; it needs no token, so it answers only callers on the loopback
interface.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from emulators.core import MovableClock, azure_error
from emulators.faults import FaultInjector, SpecError, parse_fault, parse_latency, parse_throttle
from emulators.rotation_policy import duration_seconds


class AdminTarget(Protocol):
    """What the admin API steers (emulators.server.EmulatorHost)."""

    clock: MovableClock
    faults: FaultInjector

    async def move_clock_to(self, timestamp: float) -> None: ...
    async def reset(self) -> None: ...


def _bad(message: str) -> web.Response:
    return azure_error(400, "InvalidRequest", message)


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise SpecError("body: not valid JSON") from None


def _clock_json(clock: MovableClock) -> dict[str, Any]:
    now = clock.now()
    return {"now": now.isoformat().replace("+00:00", "Z"), "timestamp": now.timestamp()}


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


@web.middleware
async def loopback_only(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """The admin API has no authentication: refuse anything that is not from this machine."""
    if request.path.startswith("/admin") and not is_loopback(request.remote):
        return azure_error(403, "Forbidden", "The admin API answers loopback callers only.")
    return await handler(request)


def admin_routes(target: AdminTarget) -> list[web.RouteDef]:
    routes = web.RouteTableDef()

    @routes.get("/admin/clock")
    async def get_clock(request: web.Request) -> web.Response:
        return web.json_response(_clock_json(target.clock))

    @routes.post("/admin/clock")
    async def move_clock(request: web.Request) -> web.Response:
        try:
            body = await _json(request)
            if not isinstance(body, dict) or len({"advance", "advance_iso", "set"} & set(body)) != 1:
                raise SpecError("body: give exactly one of advance (seconds), advance_iso (e.g. P30D), set (ISO time)")
            now = target.clock.timestamp()
            if "advance" in body:
                seconds = body["advance"]
                if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                    raise SpecError(f"advance: expected a non-negative number of seconds, got {seconds!r}")
                goal = now + float(seconds)
            elif "advance_iso" in body:
                try:
                    goal = now + duration_seconds(body["advance_iso"])
                except ValueError as exc:
                    raise SpecError(f"advance_iso: {exc}") from None
            else:
                try:
                    when = dt.datetime.fromisoformat(str(body["set"]))
                except ValueError:
                    raise SpecError(f"set: not an ISO-8601 date-time ({body['set']!r})") from None
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                goal = when.timestamp()
                if goal < now:
                    raise SpecError("set: the clock only moves forward")
        except SpecError as exc:
            return _bad(str(exc))
        # Time passes the way it would: RBAC changes pending on the way take effect, consumers check each minute.
        await target.move_clock_to(goal)
        return web.json_response(_clock_json(target.clock))

    @routes.post("/admin/latency")
    async def set_latency(request: web.Request) -> web.Response:
        try:
            rule = parse_latency(await _json(request))
        except SpecError as exc:
            return _bad(str(exc))
        target.faults.set_latency(rule)
        return web.json_response({"ms": rule.ms, "operation": rule.operation, "vault": rule.vault})

    @routes.delete("/admin/latency")
    async def clear_latency(request: web.Request) -> web.Response:
        target.faults.latencies.clear()
        return web.Response(status=204)

    @routes.get("/admin/throttle")
    async def get_throttle(request: web.Request) -> web.Response:
        return web.json_response(target.faults.throttle.to_json())

    @routes.post("/admin/throttle")
    async def set_throttle(request: web.Request) -> web.Response:
        try:
            settings = parse_throttle(await _json(request))
        except SpecError as exc:
            return _bad(str(exc))
        target.faults.set_throttle(settings)
        return web.json_response(settings.to_json())

    @routes.get("/admin/faults")
    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in target.faults.faults]})

    @routes.post("/admin/faults")
    async def add_fault(request: web.Request) -> web.Response:
        try:
            rule = parse_fault(await _json(request))
        except SpecError as exc:
            return _bad(str(exc))
        target.faults.add_fault(rule)
        return web.json_response(rule.to_json(), status=201)

    @routes.delete("/admin/faults")
    async def clear_faults(request: web.Request) -> web.Response:
        target.faults.clear_faults()
        return web.Response(status=204)

    @routes.get("/admin/counters")
    async def counters(request: web.Request) -> web.Response:
        return web.json_response(target.faults.counters_json())

    @routes.delete("/admin/counters")
    async def clear_counters(request: web.Request) -> web.Response:
        target.faults.counters.clear()
        return web.Response(status=204)

    @routes.post("/admin/reset")
    async def reset(request: web.Request) -> web.Response:
        await target.reset()
        return web.json_response({"reset": True, **_clock_json(target.clock)})

    return list(routes)
