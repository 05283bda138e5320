"""Runs the loaded app until SIGINT/SIGTERM: binds the HTTP server, starts timers and queue pollers, prints the
function list and the ready line, and on a signal stops pollers and timers, closes the server and returns 0."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from devhost import console
from devhost.app_loader import QUEUE_TRIGGER, TIMER_TRIGGER
from devhost.host_state import HostState
from devhost.http_host import build_application
from devhost.queues import QueueConnectionError, QueuePoller, connection_string
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")

SHUTDOWN_GRACE_SECONDS = 2.0  # aiohttp may wait this twice for in-flight requests


async def serve(state: HostState, *, host: str, port: int) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(build_application(state), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        log.error("Cannot listen on %s:%s: %s", host, port, error.strerror or error)
        await runner.cleanup()
        return 1
    bound_port = runner.addresses[0][1]
    state.base_url = f"http://{host}:{bound_port}"
    _start_triggers(state)
    console.emit(console.function_lines(state.functions, state.base_url, state.config.route_prefix))
    log.info("Host started; listening on %s", state.base_url)
    console.emit([console.ready_line(state.functions, state.base_url, state.keys)])
    await stopping.wait()
    log.info("Stopping the host (signal received)")
    await state.stop_background()
    await runner.cleanup()
    state.invoker.shutdown()
    log.info("Host stopped")
    return 0


def _start_triggers(state: HostState) -> None:
    for spec in state.functions:
        if spec.trigger_type == TIMER_TRIGGER:
            timer = TimerRunner(spec, state.invoker)
            state.timers[spec.name] = timer
            state.spawn(timer.run())
        elif spec.trigger_type == QUEUE_TRIGGER:
            try:
                connection = connection_string(spec.connection)
            except QueueConnectionError as error:
                # the host keeps running with the function in error; so does devhost
                log.error("The '%s' function is in error: %s", spec.name, error)
                continue
            state.spawn(QueuePoller(spec, state.invoker, state.config.queues, connection).run())
