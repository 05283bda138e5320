"""Indexing a FunctionApp in-process: what devhost reads from the bindings, and the apps it refuses to serve."""

from __future__ import annotations

import azure.functions as func
import pytest

from devhost.app_loader import AppLoadError, index_functions
from devhost.keys import AuthLevel, HostKeys


def test_bindings_are_read_from_the_function_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_NAME", "Rewrap")
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ADMIN)

    @app.route(route="things/{id:int}", methods=["GET", "DELETE"])
    def things(req: func.HttpRequest) -> str:
        return "x"

    @app.route()
    async def default_route(req: func.HttpRequest) -> str:
        return "y"

    @app.queue_trigger(arg_name="msg", queue_name="%QUEUE_NAME%", connection="Storage")
    def worker(msg: func.QueueMessage) -> None: ...

    by_name = {spec.name: spec for spec in index_functions(app)}
    assert by_name["worker"].queue_name == "rewrap"
    assert by_name["things"].route is not None and by_name["things"].route.template == "things/{id:int}"
    assert by_name["things"].methods == ("GET", "DELETE")
    assert by_name["things"].auth_level is AuthLevel.ADMIN
    assert by_name["things"].is_async is False
    assert by_name["default_route"].route is not None and by_name["default_route"].route.template == "default_route"
    assert by_name["default_route"].is_async is True
    assert by_name["worker"].connection == "Storage"


def test_a_parameter_without_binding_is_refused_like_the_worker_does() -> None:
    app = func.FunctionApp()

    @app.route(route="x")
    def handler(req: func.HttpRequest, extra: str) -> str:
        return "x"

    with pytest.raises(AppLoadError, match=r"function 'handler': parameters \['extra'\]"):
        index_functions(app)


def test_a_bad_schedule_is_refused_with_the_function_name() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule="every five minutes", arg_name="timer")
    def sweep(timer: func.TimerRequest) -> None: ...

    with pytest.raises(AppLoadError, match=r"function 'sweep': timer schedule 'every five minutes'"):
        index_functions(app)


def test_an_unsupported_trigger_is_named() -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="c/{name}", connection="Storage")
    def on_blob(blob: func.InputStream) -> None: ...

    with pytest.raises(AppLoadError, match="trigger 'blobTrigger' is not served by devhost"):
        index_functions(app)


def test_key_rules_per_auth_level() -> None:
    keys = HostKeys(function_key="f", master_key="m", eventgrid_key="e")
    secret = HostKeys(function_key="fn-secret", master_key="master-secret", eventgrid_key="eg-secret")
    assert "secret" not in repr(secret)
    assert keys.allows(AuthLevel.ANONYMOUS, None)
    assert [keys.allows(AuthLevel.FUNCTION, k) for k in (None, "", "x", "f", "m", "e")] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
    assert [keys.allows(AuthLevel.ADMIN, k) for k in ("f", "m")] == [False, True]
    assert [keys.allows_eventgrid(k) for k in ("f", "m", "e")] == [False, True, True]
