"""What every request handler of devhost needs: the indexed functions, the keys, the invoker and host.json; plus the
background tasks (timers, queue pollers, admin-API runs) that have to be stopped on shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devhost.app_loader import FunctionSpec
from devhost.invocation import Invoker
from devhost.keys import HostKeys
from devhost.settings import HostConfig
from devhost.timers import TimerRunner


@dataclass
class HostState:
    functions: list[FunctionSpec]
    keys: HostKeys
    invoker: Invoker
    config: HostConfig
    timers: dict[str, TimerRunner] = field(default_factory=dict)
    base_url: str = ""
    started_monotonic: float = field(default_factory=time.monotonic)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def find(self, name: str | None) -> FunctionSpec | None:
        """Function names are case-insensitive in the host's URLs."""
        if not name:
            return None
        wanted = name.lower()
        return next((spec for spec in self.functions if spec.name.lower() == wanted), None)

    @property
    def http_functions(self) -> list[FunctionSpec]:
        """HTTP functions in route-precedence order: literal segments before parameters before catch-alls."""
        routed = [spec for spec in self.functions if spec.route is not None]
        return sorted(routed, key=lambda spec: spec.route.precedence if spec.route else ())

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs `work` in the background and keeps a reference until it ends (asyncio only keeps weak ones)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def stop_background(self) -> None:
        """Cancels timers, pollers and pending admin runs and waits until they are gone."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


STATE = web.AppKey("devhost_state", HostState)
