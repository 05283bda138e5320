"""How emulated time passes: the clock moves, Key Vault's lifecycle runs, RBAC changes propagate, consumers check.

A clock move (admin API) or the real-time tick (about once a second) ends in a *step*: the assignment changes due
by then take effect in Key Vault's authorization (emulators.rbac_propagation), each vault's lifecycle runs (expiry
events, policy rotation, purges), and every consumer checks that it can still use its key (emulators.consumers).
While any assignment change is pending, a clock move walks there in steps of at most one emulated minute, so a
consumer checks its access at least once per emulated minute of every propagation window, as a real server keeps
using its key all the time; a window in which a consumer holds no effective grant is seen and counted. Outside
windows the clock jumps in one step, so moving it two days costs one step, not 2880.

A check inside a window is counted in `minute_checks` (at most one per emulated minute, plus one at every step
where a change took effect), and each counted check that finds a consumer unable to use its key adds one to that
consumer's `unavailable` minutes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from emulators.core import MovableClock, azure_error
from emulators.keyvault_store import VaultStore
from emulators.lifecycle import run_lifecycle
from emulators.rbac_propagation import MINUTE, RbacPropagation, check_max_seconds

log = logging.getLogger(__name__)


class PropagationHost(Protocol):
    """ARM's side: the propagation state and applying what is due (emulators.arm.ArmState)."""

    rbac: RbacPropagation[Any]

    def apply_due_rbac(self, now: float) -> int: ...


class Checker(Protocol):
    """The consumers' side (emulators.consumers.ConsumerKeys): one check of each, consumer id -> available."""

    def check_each(self) -> dict[str, bool]: ...


class ClockWalk:
    """Moves the emulated clock and runs everything that happens as time passes; one step at a time (a lock)."""

    def __init__(
        self,
        clock: MovableClock,
        arm: PropagationHost,
        stores: dict[str, VaultStore],
        consumers: Checker,
        *,
        also: Sequence[Callable[[], object]] = (),
        more_rbac: Sequence[RbacPropagation[Any]] = (),
    ) -> None:
        self.clock = clock
        self.arm = arm
        self.stores = stores
        self.consumers = consumers
        self.also = tuple(also)  # whatever else finishes as time passes (before the consumers check)
        self.more_rbac = tuple(more_rbac)  # other propagations (Managed HSM local RBAC), walked in minutes too
        self.lock = asyncio.Lock()

    async def _step(self) -> None:
        rbac = self.arm.rbac
        now = self.clock.timestamp()
        in_window = self._pending()
        applied = self.arm.apply_due_rbac(now)
        for store in self.stores.values():
            await run_lifecycle(store)
        for happen in self.also:
            happen()
        results = self.consumers.check_each()
        minute_passed = rbac.last_counted_at is None or now - rbac.last_counted_at >= MINUTE
        if in_window and (applied or minute_passed):
            rbac.count_check(results)
            rbac.last_counted_at = now

    def _pending(self) -> bool:
        return bool(self.arm.rbac.pending) or any(r.pending for r in self.more_rbac)

    async def step(self) -> None:
        """One step at the clock's current time (the real-time tick)."""
        async with self.lock:
            await self._step()

    async def move_to(self, target: float) -> None:
        """Advance the clock to `target` (emulated epoch seconds; never backwards): minute steps while changes
        are pending, then one jump."""
        async with self.lock:
            while self._pending() and self.clock.timestamp() < target:
                self.clock.advance_to(min(self.clock.timestamp() + MINUTE, target))
                await self._step()
            self.clock.advance_to(target)
            await self._step()

    async def settle(self) -> None:
        """Advance the clock by the longest pending delay: every pending change has then taken effect."""
        dues = [d for r in (self.arm.rbac, *self.more_rbac) if (d := r.last_due()) is not None]
        last = max(dues, default=None)
        await self.move_to(max(self.clock.timestamp(), last if last is not None else 0.0))

    async def tick_forever(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.step()
            except Exception:  # keep ticking; one bad key must not stop expiry events for the rest
                log.exception("lifecycle check failed")


def propagation_admin_routes(walk: ClockWalk, on_change: Any) -> list[web.RouteDef]:
    """`GET /admin/rbac/propagation`; `PUT` {"max_seconds": N, "seed"?: S} for later changes (0 = immediate);
    `POST /admin/rbac/propagation/settle`: the clock moves by the longest pending delay."""
    routes = web.RouteTableDef()

    def status() -> web.Response:
        return web.json_response(walk.arm.rbac.to_json(walk.clock.timestamp()))

    @routes.get("/admin/rbac/propagation")
    async def get_propagation(request: web.Request) -> web.Response:
        return status()

    @routes.put("/admin/rbac/propagation")
    async def put_propagation(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return azure_error(400, "InvalidRequest", "body: not valid JSON")
        if not isinstance(body, dict) or "max_seconds" not in body:
            return azure_error(400, "InvalidRequest", 'body: expected {"max_seconds": N} (0 = immediate)')
        seed = body.get("seed", walk.arm.rbac.seed)
        if not isinstance(seed, int) or isinstance(seed, bool):
            return azure_error(400, "InvalidRequest", f"seed: expected an integer, got {seed!r}")
        try:
            walk.arm.rbac.set_max_seconds(check_max_seconds(body["max_seconds"]))
        except ValueError as exc:
            return azure_error(400, "InvalidRequest", str(exc))
        walk.arm.rbac.seed = seed  # later draws: (seed, change number)
        on_change()
        return status()

    @routes.post("/admin/rbac/propagation/settle")
    async def settle(request: web.Request) -> web.Response:
        await walk.settle()
        on_change()
        return status()

    return list(routes)
