"""HTTP triggers served by devhost over the wire: the start-up listing, keys per auth level, routes and their
parameters and constraints, 405, the HttpRequest the function gets, and failures that do not stop the host."""

from __future__ import annotations

import re

import requests

from tests.devhost.conftest import EVENTGRID_KEY, FUNCTION_KEY, MASTER_KEY, MASTER_KEY_IN_FILE
from tests.devhost.devhost_process import DevHost, executed_line


def test_ready_line_lists_every_function_with_its_trigger(devhost: DevHost) -> None:
    functions = {entry["name"]: entry for entry in devhost.ready["functions"]}
    assert set(functions) == {
        "echo",
        "item_by_id",
        "item_by_name",
        "greet",
        "admin_only",
        "boom",
        "nothing",
        "sleep",
        "on_event",
        "every_two_seconds",
        "at_startup",
        "work_items",
    }
    assert functions["item_by_id"] == {
        "name": "item_by_id",
        "trigger": "httpTrigger",
        "route": "items/{id:int}",
        "methods": ["GET"],
        "auth_level": "function",
    }
    assert functions["admin_only"]["auth_level"] == "admin"
    assert functions["on_event"]["trigger"] == "eventGridTrigger"
    assert functions["every_two_seconds"]["schedule"] == "*/2 * * * * *"
    assert functions["work_items"]["queue"] == "work-items"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", devhost.url)


def test_listing_is_printed_like_core_tools(devhost: DevHost) -> None:
    output = devhost.output()
    assert "Functions:" in output
    assert f"  item_by_id: [GET] {devhost.url}/api/items/{{id:int}}" in output
    assert f"  echo: [GET,POST] {devhost.url}/api/echo/{{*rest}}" in output
    assert "  on_event: eventGridTrigger" in output
    assert "  every_two_seconds: timerTrigger" in output


def test_environment_wins_over_local_settings(devhost: DevHost) -> None:
    url = f"{devhost.url}/api/admin-only"
    assert requests.post(url, headers={"x-functions-key": MASTER_KEY}, timeout=5).status_code == 201
    denied = requests.post(url, headers={"x-functions-key": MASTER_KEY_IN_FILE}, timeout=5)
    assert denied.status_code == 401


def test_keys_from_settings_are_never_printed(devhost: DevHost) -> None:
    """Whoever set them has them; the output is what log files keep (the local run's devhost.log)."""
    assert not {"function_key", "master_key", "eventgrid_key"} & set(devhost.ready)
    output = devhost.output()
    assert all(key not in output for key in (FUNCTION_KEY, MASTER_KEY, EVENTGRID_KEY, MASTER_KEY_IN_FILE))


def test_function_level_needs_a_key(devhost: DevHost) -> None:
    url = f"{devhost.url}/api/items/7"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"x-functions-key": "wrong"}, timeout=5).status_code == 401
    assert requests.get(url, params={"code": "wrong"}, timeout=5).status_code == 401
    by_header = requests.get(url, headers={"x-functions-key": FUNCTION_KEY}, timeout=5)
    assert by_header.status_code == 200
    assert by_header.json() == {"by": "id", "id": 7}
    by_query = requests.get(url, params={"code": FUNCTION_KEY}, timeout=5)
    assert by_query.status_code == 200
    assert requests.get(url, params={"code": MASTER_KEY}, timeout=5).status_code == 200


def test_admin_level_needs_the_master_key(devhost: DevHost) -> None:
    url = f"{devhost.url}/api/admin-only"
    assert requests.post(url, timeout=5).status_code == 401
    assert requests.post(url, headers={"x-functions-key": FUNCTION_KEY}, timeout=5).status_code == 401
    assert requests.post(url, headers={"x-functions-key": MASTER_KEY}, timeout=5).status_code == 201


def test_route_constraints_pick_the_function(devhost: DevHost) -> None:
    by_name = requests.get(f"{devhost.url}/api/items/widget", timeout=5)
    assert (by_name.status_code, by_name.text) == (200, "item named widget")
    assert by_name.headers["Content-Type"].startswith("text/plain")
    # neither int nor alpha: no route matches
    assert requests.get(f"{devhost.url}/api/items/12ab", params={"code": FUNCTION_KEY}, timeout=5).status_code == 404
    # beyond int32, as ASP.NET's int constraint
    assert (
        requests.get(f"{devhost.url}/api/items/99999999999", params={"code": FUNCTION_KEY}, timeout=5).status_code
        == 404
    )


def test_wrong_method_gets_405_with_allow(devhost: DevHost) -> None:
    response = requests.post(f"{devhost.url}/api/items/widget", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


def test_unknown_routes_get_404(devhost: DevHost) -> None:
    assert requests.get(f"{devhost.url}/api/no-such-route", timeout=5).status_code == 404
    assert requests.get(f"{devhost.url}/elsewhere/echo/x", timeout=5).status_code == 404


def test_optional_parameter(devhost: DevHost) -> None:
    assert requests.get(f"{devhost.url}/api/greet", timeout=5).text == "hello stranger"
    assert requests.get(f"{devhost.url}/api/greet/ana", timeout=5).text == "hello ana"


def test_function_gets_the_request_as_the_worker_builds_it(devhost: DevHost) -> None:
    response = requests.post(
        f"{devhost.url}/api/echo/a/b%20c/d?x=1&x=2&y=z",
        data=b'{"hello": "world"}',
        headers={"Content-Type": "application/json", "X-Custom-Thing": "Value"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["X-Sample"] == "echo"
    assert response.headers["Content-Type"] == "application/json"
    seen = response.json()
    assert seen["class"] == "azure.functions.http.HttpRequest"
    assert seen["method"] == "POST"
    assert seen["url"] == f"{devhost.url}/api/echo/a/b%20c/d?x=1&x=2&y=z"
    assert seen["params"] == {"x": "1,2", "y": "z"}
    assert seen["route_params"] == {"rest": "a/b c/d"}
    assert seen["headers"]["x-custom-thing"] == "Value"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"] == '{"hello": "world"}'
    assert seen["function_name"] == "echo"
    assert re.fullmatch(r"[0-9a-f-]{36}", seen["invocation_id"])


def test_invocations_are_logged_like_core_tools(devhost: DevHost) -> None:
    start = len(devhost.lines)
    seen = requests.get(f"{devhost.url}/api/echo/logged", timeout=5).json()
    invocation_id = seen["invocation_id"]
    devhost.wait_for_line(
        lambda line: (
            f"Executing 'Functions.echo' (Reason='This function was programmatically called via the host "
            f"APIs.', Id={invocation_id})" in line
        ),
        start=start,
    )
    # This invocation's own line: an earlier test's echo may still be logging after `start` on a busy machine.
    done = devhost.wait_for_line(
        lambda line: bool((m := executed_line("echo", "Succeeded").search(line)) and m.group(1) == invocation_id),
        start=start,
    )
    assert re.match(r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] ", done)


def test_a_failing_function_gives_500_and_the_host_keeps_serving(devhost: DevHost) -> None:
    start = len(devhost.lines)
    failed = requests.get(f"{devhost.url}/api/boom", timeout=5)
    assert failed.status_code == 500
    assert "sample failure" not in failed.text  # no internals on the wire
    line = devhost.wait_for_line(lambda text: bool(executed_line("boom", "Failed").search(text)), start=start)
    invocation_id = executed_line("boom", "Failed").search(line).group(1)
    devhost.wait_for_line(
        lambda text: f"Exception while executing function: Functions.boom (Id={invocation_id})" in text
    )
    devhost.wait_for_line(lambda text: "RuntimeError: sample failure on purpose" in text, start=start)
    assert requests.get(f"{devhost.url}/api/greet/again", timeout=5).text == "hello again"


def test_returning_none_gives_204(devhost: DevHost) -> None:
    response = requests.get(f"{devhost.url}/api/nothing", timeout=5)
    assert (response.status_code, response.content) == (204, b"")
