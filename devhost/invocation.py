"""Runs one function invocation the way the Python worker does — async functions on the event loop, sync ones in a
thread pool — and logs it the way Core Tools does:

    Executing 'Functions.NAME' (Reason='...', Id=<uuid>)
    Executed 'Functions.NAME' (Succeeded, Id=<uuid>, Duration=12ms)

A function that raises is logged with its invocation id and traceback and reported as a failed outcome; it never
reaches the caller as an exception, so nothing a function does can take the host down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
import functools
import inspect
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from devhost.app_loader import FunctionSpec

log = logging.getLogger("devhost")

HOST_API_REASON = "This function was programmatically called via the host APIs."


@dataclass(frozen=True)
class InvocationOutcome:
    """What happened: the id logged for it, success, the (converted) return value, and how long it took."""

    invocation_id: str
    succeeded: bool
    value: Any = None
    error: BaseException | None = None
    duration_ms: int = 0


class _TraceContext(func._abc.TraceContext):
    """An empty W3C trace context (devhost does no distributed tracing)."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """The `context` argument the worker passes to a function that declares one."""

    _thread_local = threading.local()

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func._abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> None:
        return None


class DiscardedOut(func.Out):
    """Stands in for an output binding devhost does not implement: the value is kept for get() and logged as dropped."""

    def __init__(self, function_name: str, binding_name: str) -> None:
        self._function_name = function_name
        self._binding_name = binding_name
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val
        log.warning(
            "Functions.%s: output binding %r is not implemented by devhost; the value was discarded",
            self._function_name,
            self._binding_name,
        )

    def get(self) -> Any:
        return self._value


class Invoker:
    """Runs functions; owns the worker-like thread pool for sync functions."""

    def __init__(
        self,
        *,
        function_directory: Path,
        max_workers: int | None = None,
        timeout: dt.timedelta | None = None,
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="devhost-worker")
        self._function_directory = str(function_directory)
        self._timeout = timeout
        self._sync_running = 0
        self._count_lock = threading.Lock()

    @property
    def sync_runs_in_progress(self) -> int:
        """Sync functions still running in the pool (a thread cannot be cancelled; the process exit ends it)."""
        return self._sync_running

    def shutdown(self) -> None:
        """Stops taking work; threads still running a sync function are left to finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def invoke(
        self,
        spec: FunctionSpec,
        *,
        reason: str,
        build_input: Callable[[], Any],
        convert_result: Callable[[Any], Any] | None = None,
    ) -> InvocationOutcome:
        """Builds the trigger input, calls the function, converts its result; all inside one logged invocation.

        Building and converting happen inside it because in the worker a bad input (say, an unparseable eventTime)
        or an unusable return value fails the invocation too.
        """
        invocation_id = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            arguments = self._arguments(spec, build_input(), invocation_id)
            returned = await self._with_timeout(spec, self._call(spec, arguments))
            value = convert_result(returned) if convert_result else returned
        except asyncio.CancelledError:
            log.warning("Executed 'Functions.%s' (Cancelled, Id=%s)", spec.name, invocation_id)
            raise
        except BaseException as error:  # a function's SystemExit must not stop the host either
            duration = _elapsed_ms(started)
            log.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", spec.name, invocation_id, duration)
            log.error(
                "Exception while executing function: Functions.%s (Id=%s)\n%s",
                spec.name,
                invocation_id,
                _user_traceback(error),
            )
            return InvocationOutcome(invocation_id, False, error=error, duration_ms=duration)
        duration = _elapsed_ms(started)
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", spec.name, invocation_id, duration)
        return InvocationOutcome(invocation_id, True, value=value, duration_ms=duration)

    async def _call(self, spec: FunctionSpec, arguments: dict[str, Any]) -> Any:
        if spec.is_async:
            return await spec.user_function(**arguments)
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, self._counted, spec.user_function, arguments)
        return await loop.run_in_executor(self._executor, call)

    def _counted(self, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        with self._count_lock:
            self._sync_running += 1
        try:
            return function(**arguments)
        finally:
            with self._count_lock:
                self._sync_running -= 1

    async def _with_timeout(self, spec: FunctionSpec, call: Any) -> Any:
        if self._timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, self._timeout.total_seconds())
        except TimeoutError:
            raise TimeoutError(
                f"Timeout value of {self._timeout} exceeded by function 'Functions.{spec.name}' "
                "(a sync function's thread keeps running; the worker would be restarted in Azure)"
            ) from None

    def _arguments(self, spec: FunctionSpec, trigger_value: Any, invocation_id: str) -> dict[str, Any]:
        """Maps parameters to bindings by name, as the worker does; `context` gets the invocation context."""
        parameters = inspect.signature(spec.user_function).parameters
        arguments: dict[str, Any] = {spec.trigger_arg: trigger_value}
        for binding in spec.bindings:
            name = str(binding.get("name", ""))
            if name not in parameters:
                continue
            direction = str(binding.get("direction", "")).upper()
            arguments[name] = DiscardedOut(spec.name, name) if direction == "OUT" else None
        if "context" in parameters and "context" not in arguments:
            arguments["context"] = InvocationContext(invocation_id, spec.name, self._function_directory)
        return arguments


_HOST_CODE = (
    str(Path(__file__).parent),
    str(Path(concurrent.futures.__file__).parent),
    str(Path(asyncio.__file__).parent),
)


def _user_traceback(error: BaseException) -> str:
    """The traceback from the first frame outside devhost and the thread pool, so the function's own code leads."""
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename.startswith(_HOST_CODE):
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(error), error, frames or error.__traceback__)).rstrip()


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
