"""The served OpenAPI document: in step with the app's HTTP routes, valid OpenAPI 3.1, and no broader or narrower
than the parsers where it matters (a request it calls valid is one shared.http.requests takes)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from functions.api.answers import rotation_answer
from functions.api.openapi import (
    REVOCATION_OPERATIONS,
    REVOCATION_SCHEMAS,
    SCHEMAS,
    SERVER,
    openapi_document,
)
from functions.rotation.rotate import RotationOutcome, RotationStatus
from shared.errors import ServiceUnavailable, Throttled
from shared.http.errors import STATUS_BY_ERROR
from shared.http.requests import parse_audit_request, parse_rotate_request
from tests.support.app_index import http_routes, indexed_functions

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_routes(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def test_every_route_is_documented_and_every_documented_route_exists():
    assert document_routes(openapi_document()) == http_routes()


def test_each_operation_is_named_after_its_function():
    names = set(indexed_functions())
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] in names, f"{method} {path}"


def test_the_document_is_valid_openapi_3_1():
    document = openapi_document()
    OPENAPI_31_VALIDATOR.validate(document)  # the OpenAPI Initiative's schema of 3.1 documents
    loaded = schemathesis.openapi.from_dict(document)
    operations = {(op.path, op.method) for op in (result.ok() for result in loaded.get_all_operations())}
    assert operations == http_routes()


def test_the_document_is_served_relative_to_the_route_prefix():
    host = json.loads((__import__("pathlib").Path(__file__).parents[3] / "host.json").read_text())
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    assert openapi_document()["servers"] == [{"url": f"/{prefix}"}] == [{"url": SERVER}]


def test_every_operation_needs_the_function_key_and_declares_the_hosts_401():
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"functionKeyHeader": []}, {"functionKeyQuery": []}], f"{method} {path}"
            assert "401" in operation["responses"]
            assert "500" in operation["responses"]


def test_every_error_answer_has_the_error_body():
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and status != "401":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


def test_every_status_a_rotation_can_answer_is_declared():
    declared = set(openapi_document()["paths"]["/rotations"]["post"]["responses"])
    outcome = RotationOutcome(
        key="k", status=RotationStatus.FAILED, reason="r", trigger="operator", from_version="a", to_version=None
    )
    answers = [rotation_answer(outcome)]
    answers += [rotation_answer(_with(outcome, status=s)) for s in RotationStatus]
    answers += [rotation_answer(_with(outcome, error=e)) for e in (Throttled("slow", 3), ServiceUnavailable("down"))]
    # 412 never leaves a handler; 403 (CallerNotAllowed) and 422 (Unprocessable) come from the revocation routes.
    statuses = {str(a.status) for a in answers} | {str(s) for _, s in STATUS_BY_ERROR if s not in (403, 412, 422)}
    assert statuses <= declared
    throttled = next(a for a in answers if a.status == 429)
    assert "Retry-After" in throttled.headers
    assert "Retry-After" in openapi_document()["paths"]["/rotations"]["post"]["responses"]["429"]["headers"]


def _with(outcome: RotationOutcome, **changes) -> RotationOutcome:
    from dataclasses import replace

    return replace(outcome, **changes)


def test_the_revocation_routes_are_served():
    paths = openapi_document()["paths"]
    assert set(REVOCATION_OPERATIONS) <= set(paths) and set(REVOCATION_SCHEMAS) <= set(SCHEMAS)
    assert "Location" in paths["/revocations"]["post"]["responses"]["202"]["headers"]


SCHEMA = schemathesis.openapi.from_dict(openapi_document())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=SCHEMA["/rotations"]["POST"].as_strategy())
def test_every_rotation_request_the_document_calls_valid_is_parsed(case):
    body = json.dumps(case.body).encode()
    command = parse_rotate_request(body, {"Content-Type": "application/json"})
    assert (command.key, command.reason) == (case.body["key"], case.body["reason"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=SCHEMA["/audit"]["GET"].as_strategy())
def test_every_audit_query_the_document_calls_valid_is_parsed(case):
    query = urlencode({name: str(value) for name, value in (case.query or {}).items()})
    parsed = parse_audit_request(f"https://app/api/audit?{query}")
    if "limit" in (case.query or {}):
        assert parsed.limit == int(case.query["limit"])


@pytest.mark.parametrize(
    "body",
    [
        {"key": "mysql-encryption-key"},
        {"key": "mysql-encryption-key", "reason": "x", "extra": 1},
        {"key": "no spaces allowed", "reason": "x"},
        {"key": "k", "reason": "x" * 501},
        {"key": "k", "reason": "   "},
    ],
    ids=["missing-reason", "unknown-field", "bad-key", "reason-too-long", "blank-reason"],
)
def test_what_the_document_calls_invalid_the_parser_refuses(body):
    import jsonschema_rs

    from shared.errors import InvalidInput

    schema = {**openapi_document()["components"]["schemas"]["RotateRequest"]}
    assert not jsonschema_rs.validator_for(schema).is_valid(body)
    with pytest.raises(InvalidInput):
        parse_rotate_request(json.dumps(body).encode(), {"Content-Type": "application/json"})
