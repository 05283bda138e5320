"""Turns `module:attribute` into the list of functions devhost serves, read the way the Python worker indexes a v2
app: `app.get_functions()`, each function's bindings from `get_function_json()`, its callable from
`get_user_function()`.

Everything that would stop the Functions host from indexing the app (a route it cannot parse, a timer schedule that
is not NCRONTAB, two triggers) fails here with the function's name in the message.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost.keys import AuthLevel
from devhost.route_templates import RouteTemplate, compile_route

log = logging.getLogger("devhost")

HTTP_TRIGGER = "httpTrigger"
EVENTGRID_TRIGGER = "eventGridTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, EVENTGRID_TRIGGER, TIMER_TRIGGER, QUEUE_TRIGGER)
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")


class AppLoadError(RuntimeError):
    """The app could not be imported or indexed; the message says which function and why."""


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: its trigger binding, its other bindings, and the user's callable."""

    name: str
    trigger_type: str
    trigger: Mapping[str, Any]
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any] = field(repr=False)
    route: RouteTemplate | None = None
    methods: tuple[str, ...] = ()
    auth_level: AuthLevel | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    @property
    def trigger_arg(self) -> str:
        return str(self.trigger["name"])

    @property
    def is_http(self) -> bool:
        return self.trigger_type == HTTP_TRIGGER

    @property
    def schedule(self) -> str | None:
        value = self.trigger.get("schedule")
        return resolve_app_setting_refs(str(value)) if value is not None else None

    @property
    def queue_name(self) -> str | None:
        value = self.trigger.get("queueName")
        return resolve_app_setting_refs(str(value)).lower() if value is not None else None

    @property
    def connection(self) -> str:
        return str(self.trigger.get("connection") or "AzureWebJobsStorage")

    @property
    def run_on_startup(self) -> bool:
        return bool(self.trigger.get("runOnStartup", False))

    def describe(self) -> dict[str, Any]:
        """The function as the ready line and GET /admin/functions show it (no secrets)."""
        entry: dict[str, Any] = {"name": self.name, "trigger": self.trigger_type}
        if self.route is not None:
            entry["route"] = self.route.template
            entry["methods"] = list(self.methods)
            entry["auth_level"] = self.auth_level.value if self.auth_level else None
        if self.trigger_type == TIMER_TRIGGER:
            entry["schedule"] = self.schedule
            entry["run_on_startup"] = self.run_on_startup
        if self.trigger_type == QUEUE_TRIGGER:
            entry["queue"] = self.queue_name
            entry["connection"] = self.connection
        return entry


_SETTING_REF = re.compile(r"%([^%]+)%")


def resolve_app_setting_refs(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Binding expressions like `%RewrapQueueName%` are replaced by the app setting, as the host does."""
    source = os.environ if environ is None else environ

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in source:
            raise AppLoadError(f"binding expression %{name}%: app setting {name!r} is not set")
        return source[name]

    return _SETTING_REF.sub(replace, text)


def import_function_app(target: str, app_root: Path | None = None) -> Any:
    """Imports `module:attribute` (attribute defaults to `app`) with the app's folder first on sys.path."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise AppLoadError(f"--app {target!r}: expected 'module:attribute', e.g. 'function_app:app'")
    root = str((app_root or Path.cwd()).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if getattr(error, "name", None) == module_name:
            raise AppLoadError(f"--app {target!r}: module {module_name!r} not found under {root}") from error
        raise
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"--app {target!r}: module {module_name!r} has no attribute {attribute!r}") from None


def index_functions(app: Any) -> list[FunctionSpec]:
    """Reads every registered function's bindings; fails on anything the host would refuse to index."""
    if not hasattr(app, "get_functions"):
        raise AppLoadError(f"{type(app).__name__} is not an azure.functions.FunctionApp (no get_functions())")
    specs = []
    for function in app.get_functions():
        name = function.get_function_name()
        try:
            document = json.loads(function.get_function_json())
        except (TypeError, ValueError) as error:
            raise AppLoadError(f"function {name!r}: bindings are not valid JSON ({error})") from error
        specs.append(_spec(name, document.get("bindings", []), function.get_user_function()))
    return specs


def _spec(name: str, bindings: list[dict[str, Any]], user_function: Callable[..., Any]) -> FunctionSpec:
    triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise AppLoadError(f"function {name!r}: needs exactly one trigger binding, found {len(triggers)}")
    trigger = triggers[0]
    trigger_type = str(trigger["type"])
    if trigger_type not in SUPPORTED_TRIGGERS:
        raise AppLoadError(
            f"function {name!r}: trigger {trigger_type!r} is not served by devhost "
            f"(supported: {', '.join(SUPPORTED_TRIGGERS)})"
        )
    others = tuple(b for b in bindings if b is not trigger)
    _check_signature(name, user_function, bindings)
    for binding in others:
        if binding.get("type") == "http" and binding.get("direction", "").upper() == "OUT":
            continue
        log.warning(
            "function %r: %s binding %r (%s) is not implemented by devhost; %s",
            name,
            str(binding.get("direction", "")).lower(),
            binding.get("name"),
            binding.get("type"),
            "values set on it are discarded" if str(binding.get("direction")).upper() == "OUT" else "it gets None",
        )
    if trigger_type != HTTP_TRIGGER:
        spec = FunctionSpec(name, trigger_type, trigger, others, user_function)
        _check_non_http(spec)
        return spec
    route_text = trigger.get("route")
    route_text = name if route_text in (None, "") else str(route_text)
    try:
        route = compile_route(route_text)
        auth_level = AuthLevel.parse(trigger.get("authLevel"), where=f"function {name!r}")
    except ValueError as error:
        raise AppLoadError(f"function {name!r}: {error}") from error
    methods = tuple(str(m).upper() for m in trigger.get("methods") or ()) or ALL_METHODS
    return FunctionSpec(name, trigger_type, trigger, others, user_function, route, methods, auth_level)


def _check_non_http(spec: FunctionSpec) -> None:
    # imported here so an app without timers never pays for croniter
    if spec.trigger_type == TIMER_TRIGGER:
        from devhost.timers import parse_schedule

        if not spec.schedule:
            raise AppLoadError(f"function {spec.name!r}: timer trigger has no schedule")
        try:
            parse_schedule(spec.schedule)
        except ValueError as error:
            raise AppLoadError(f"function {spec.name!r}: {error}") from error
    if spec.trigger_type == QUEUE_TRIGGER:
        queue = spec.queue_name
        if not queue or not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", queue):
            raise AppLoadError(
                f"function {spec.name!r}: queueName {queue!r} is not a valid queue name "
                "(3-63 lower-case letters, digits and single hyphens)"
            )


def _check_signature(name: str, user_function: Callable[..., Any], bindings: list[dict[str, Any]]) -> None:
    """The worker refuses a function whose parameters and bindings disagree; so does devhost, with the same rule."""
    parameters = set(inspect.signature(user_function).parameters)
    bound = {str(b.get("name")) for b in bindings if b.get("name") != "$return"}
    unbound = sorted(parameters - bound - {"context"})
    if unbound:
        raise AppLoadError(f"function {name!r}: parameters {unbound} are declared in Python but have no binding")
    missing = sorted(bound - parameters)
    if missing:
        raise AppLoadError(f"function {name!r}: bindings {missing} have no parameter of that name in Python")
