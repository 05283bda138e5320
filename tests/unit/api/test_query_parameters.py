"""Every HTTP route refuses a query parameter it does not take, naming it, before any port is built: a route added
later is covered by this test without being listed in it. (Before, `POST /api/rotations?foo=bar` rotated.)"""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from tests.support.app_index import indexed_functions

# What a route's template needs to be reachable; the value is one the route's own parser takes.
ROUTE_VALUES = {"{id}": "0" * 32, "{name}": "mysql-encryption-key"}


def _http_functions() -> list[tuple[str, str, str]]:
    found = []
    for name, function in sorted(indexed_functions().items()):
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                route = binding["route"]
                for template, value in ROUTE_VALUES.items():
                    route = route.replace(template, value)
                found += [(name, str(method).upper(), route) for method in binding["methods"]]
    return found


class Refusing:
    """What bootstrap.deps() gives: a refused request may only record its refusal (the operator routes audit it)."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def call(self, handler, *args):
        self.called.append(handler.__name__)
        if handler.__name__ != "record_refusal":
            pytest.fail(f"{handler.__name__} reached for a refused request")


@pytest.mark.parametrize(("name", "method", "route"), _http_functions())
@pytest.mark.parametrize("query", ["foo=bar", "dry_run=true", "code=k&Key=x"])
def test_an_unknown_query_parameter_is_refused_naming_it_before_anything_is_read(
    monkeypatch, name, method, route, query
):
    import function_app

    deps = Refusing()
    monkeypatch.setattr(function_app.bootstrap, "deps", lambda: deps)
    params = {"name": "mysql-encryption-key", "id": "0" * 32}
    request = func.HttpRequest(
        method,
        f"https://app.example/api/{route}?{query}",
        headers={"Content-Type": "application/json"},
        body=b'{"key": "mysql-encryption-key", "reason": "r"}',
        route_params=params,
    )
    response = indexed_functions()[name].get_user_function()(request)
    assert response.status_code == 400, (name, response.get_body())
    error = json.loads(response.get_body())["error"]
    assert error["field"] == query.split("&")[-1].split("=")[0]
    assert "unknown query parameter" in error["message"]
    assert set(deps.called) <= {"record_refusal"}


def test_a_parameter_given_twice_is_refused_on_a_route_that_takes_it():
    import function_app

    request = func.HttpRequest("GET", "https://app.example/api/alerts?limit=1&limit=2", body=b"")
    response = function_app.alerts(request)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["field"] == "limit"
