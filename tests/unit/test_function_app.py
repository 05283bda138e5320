"""The app's trigger surface: every function, its binding type, route, methods and auth level, as the host sees it.

A renamed route or a loosened auth level changes what operators and Event Grid subscriptions call; this test is the
list of those contracts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.app_imports import modules_loaded_by_import, sdk_clients_among
from tests.support.app_index import indexed_functions

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "list_keys": {"type": "httpTrigger", "route": "keys", "methods": ["GET"], "authLevel": "FUNCTION"},
    "key_status": {"type": "httpTrigger", "route": "keys/{name}", "methods": ["GET"], "authLevel": "FUNCTION"},
    "alerts": {"type": "httpTrigger", "route": "alerts", "methods": ["GET"], "authLevel": "FUNCTION"},
    # FUNCTION unless the host runs behind App Service authentication (WEBSITE_AUTH_ENABLED=true): see function_app.
    "status": {"type": "httpTrigger", "route": "status", "methods": ["GET"], "authLevel": "FUNCTION"},
    "rotations": {"type": "httpTrigger", "route": "rotations", "methods": ["POST"], "authLevel": "FUNCTION"},
    "audit_trail": {"type": "httpTrigger", "route": "audit", "methods": ["GET"], "authLevel": "FUNCTION"},
    "revocations": {"type": "httpTrigger", "route": "revocations", "methods": ["POST"], "authLevel": "FUNCTION"},
    "revocation_status": {
        "type": "httpTrigger",
        "route": "revocations/{id}",
        "methods": ["GET"],
        "authLevel": "FUNCTION",
    },
    "restorations": {"type": "httpTrigger", "route": "restorations", "methods": ["POST"], "authLevel": "FUNCTION"},
    "revocation_check": {
        "type": "queueTrigger",
        "queueName": "cmk-revocation-check",
        "connection": "AzureWebJobsStorage",
    },
    "openapi_document": {"type": "httpTrigger", "route": "openapi.json", "methods": ["GET"], "authLevel": "FUNCTION"},
    "keyvault_events": {"type": "eventGridTrigger"},
    "role_assignment_events": {"type": "eventGridTrigger"},
    "compliance_sweep": {"type": "timerTrigger", "schedule": "0 0 * * * *", "runOnStartup": False},
    "deliver_alerts": {"type": "queueTrigger", "queueName": "cmk-alerts", "connection": "AzureWebJobsStorage"},
    "rewrap_worker": {"type": "queueTrigger", "queueName": "cmk-rewrap", "connection": "AzureWebJobsStorage"},
    "access_check": {"type": "queueTrigger", "queueName": "cmk-access-check", "connection": "AzureWebJobsStorage"},
    "consumer_moves": {"type": "queueTrigger", "queueName": "cmk-move", "connection": "AzureWebJobsStorage"},
    "consumer_moves_poisoned": {
        "type": "queueTrigger",
        "queueName": "cmk-move-poison",
        "connection": "AzureWebJobsStorage",
    },
    "access_reconcile": {"type": "queueTrigger", "queueName": "cmk-reconcile", "connection": "AzureWebJobsStorage"},
    "rewrap_poisoned": {
        "type": "queueTrigger",
        "queueName": "cmk-rewrap-poison",
        "connection": "AzureWebJobsStorage",
    },
}


@pytest.fixture(scope="module")
def functions():
    return indexed_functions()


def test_every_function_is_known(functions):
    assert set(functions) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trigger_binding(functions, name):
    bindings = json.loads(functions[name].get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["direction"] == "IN")
    for field, value in EXPECTED[name].items():
        assert trigger.get(field) == value, f"{name}: {field}"


def test_no_http_function_is_anonymous(functions):
    for name, fn in functions.items():
        for b in json.loads(fn.get_function_json())["bindings"]:
            if b["type"] == "httpTrigger":
                assert b["authLevel"] in ("FUNCTION", "ADMIN"), name


def test_sweep_schedule_comes_from_app_setting(tmp_path):
    code = "import function_app as f, json; print(json.dumps([x.get_function_json() for x in f.app.get_functions()]))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"CMK_SWEEP_SCHEDULE": "*/5 * * * * *", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    timers = [json.loads(j)["bindings"][0] for j in json.loads(out) if "timerTrigger" in j]
    assert timers[0]["schedule"] == "*/5 * * * * *"


def test_import_loads_no_azure_sdk_client():
    """Cold start: importing the app must not import an Azure SDK client library (they load on first use)."""
    modules = modules_loaded_by_import(sys.executable, ROOT)
    assert "function_app" in modules
    assert sdk_clients_among(modules) == []
    assert "azure.core.pipeline" not in modules


def test_an_error_answer_carries_the_tables_status_body_and_headers():
    """The trigger module adds nothing of its own to shared.http.errors: same status, JSON body, Retry-After."""
    import function_app
    from shared.errors import Throttled

    response = function_app._error(Throttled("key k: 429", 1.5))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body())["error"]["code"] == "Throttled"


def test_a_bug_behind_a_route_is_an_internal_error_without_details():
    import function_app

    response = function_app._error(AttributeError("'NoneType' object has no attribute 'version'"))
    assert response.status_code == 500
    body = json.loads(response.get_body())
    assert body["error"]["code"] == "InternalError"
    assert "NoneType" not in response.get_body().decode()


def test_a_bad_rotation_request_is_answered_from_the_table_before_any_port_is_built(monkeypatch):
    """Parsing comes first: a refused request never reaches bootstrap (which would build adapters from settings)."""
    import azure.functions as func

    import function_app

    monkeypatch.setattr(function_app.bootstrap, "deps", lambda: pytest.fail("deps() reached for a refused request"))
    request = func.HttpRequest(
        "POST",
        "https://app.example/api/rotations",
        headers={"Content-Type": "application/json"},
        body=b'{"key": "aks-encryption-key", "reason": "r", "force": true}',
    )
    response = function_app.rotations(request)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["field"] == "force"
    text_body = func.HttpRequest("POST", "https://app.example/api/rotations", headers={}, body=b"key=k")
    assert function_app.rotations(text_body).status_code == 415
    query = func.HttpRequest("GET", "https://app.example/api/audit?since=2026-12-01T00:00:00", body=b"")
    response = function_app.audit_trail(query)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"] == {
        "code": "InvalidField",
        "field": "since",
        "message": "'2026-12-01T00:00:00' has no offset; add Z or e.g. +01:00",
    }
