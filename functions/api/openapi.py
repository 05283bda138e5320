"""The OpenAPI 3.1 document of the operator API, served at `GET /api/openapi.json`.

One pure builder over one table of routes (`OPERATIONS`): adding a route is adding one entry there (and its
`@app.route` in function_app.py; a test keeps the two in step). The schemas describe what shared.http.requests
accepts and what functions.api.answers / shared.http.errors answer, no more: a request the document calls valid
is one the parsers take, so a client (or a fuzzer) generating from it is not refused for its shape. Where the parsers
take more than JSON Schema can say exactly (a `reason` may hold any printable Unicode), the document describes the
safe subset and says so in the description.

Paths are relative to the server `/api` (the host's route prefix), so the document needs no host name. It is built
from literals only (no Azure SDK, no settings), cheap enough to build on each request.
"""

from __future__ import annotations

import copy
from typing import Any

from functions.api.openapi_revocations import REVOCATION_OPERATIONS, REVOCATION_SCHEMAS
from functions.api.openapi_schemas import (
    API_VERSION,
    COMMON_RESPONSES,
    JSON,
    KEY_NAME_PATTERN,
    OPENAPI_VERSION,
    PRINTABLE_TEXT_PATTERN,
    RETRY_AFTER,
    SCHEMAS,
    SECURITY,
    SECURITY_SCHEMES,
    SERVER,
    SINCE_PATTERN,
    UPSTREAM,
    error_response,
    ok_response,
    schema_ref,
)
from functions.api.openapi_status import STATUS_OPERATIONS, STATUS_SCHEMAS
from shared.http.requests import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT, MAX_CONTINUATION_CHARS, MAX_SINCE_CHARS

OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/keys": {
        "get": {
            "operationId": "list_keys",
            "summary": "Every managed key: current version, attributes, rotation policy, findings and dependents",
            "responses": {
                "200": ok_response("the compliance report, one entry per managed key", schema_ref("KeysReport")),
                "502": UPSTREAM,
            },
        }
    },
    "/rotations": {
        "post": {
            "operationId": "rotations",
            "summary": "An operator's rotation of one managed key",
            "requestBody": {
                "required": True,
                "description": "Content-Type application/json (charset utf-8 if given); anything else is 415.",
                "content": {JSON: {"schema": schema_ref("RotateRequest")}},
            },
            "responses": {
                "201": ok_response("this request made the new version", schema_ref("RotationOutcome")),
                "200": ok_response(
                    "already rotated: the identical request within 15 minutes, another trigger, or the vault's policy",
                    schema_ref("RotationOutcome"),
                ),
                "400": error_response(
                    "the body is not a valid request (`field` names what is wrong); nothing was changed"
                ),
                "404": error_response("UnknownKey: the inventory manages no such key"),
                "409": error_response(
                    "another rotation of this version is in progress (`rotation` carries the outcome)"
                ),
                "415": error_response(
                    "UnsupportedMediaType: the body is not sent as application/json (field Content-Type)"
                ),
                "429": {
                    **error_response("Key Vault throttled the rotation (`rotation` carries the outcome)"),
                    "headers": RETRY_AFTER,
                },
                "502": error_response("the rotation failed upstream (`rotation` carries the outcome and its audit id)"),
            },
        }
    },
    "/audit": {
        "get": {
            "operationId": "audit_trail",
            "summary": "The audit trail, newest first, a page at a time, filtered by key, action, outcome and time",
            "description": "Each parameter at most once; an unknown parameter is 400 (except the host's `code`).",
            "parameters": [
                {
                    "name": "key",
                    "in": "query",
                    "description": "only this managed key's records (a key the inventory does not manage is 404)",
                    "schema": {"type": "string", "pattern": KEY_NAME_PATTERN},
                },
                {
                    "name": "action",
                    "in": "query",
                    "description": "only records of this action (filtered by the store, however rare it is)",
                    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,63}$", "examples": ["revocation"]},
                },
                {
                    "name": "outcome",
                    "in": "query",
                    "description": "only records with this outcome",
                    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,63}$", "examples": ["failed"]},
                },
                {
                    "name": "since",
                    "in": "query",
                    "description": "only records at or after this instant, with Z or an offset (write + as %2B)",
                    "schema": {
                        "type": "string",
                        "format": "date-time",
                        "maxLength": MAX_SINCE_CHARS,
                        "pattern": SINCE_PATTERN,
                        "examples": ["2026-12-01T00:00:00Z"],
                    },
                },
                {
                    "name": "continuation",
                    "in": "query",
                    "description": "the `continuation` a previous page returned (any other token is 400)",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_CONTINUATION_CHARS,
                        "pattern": PRINTABLE_TEXT_PATTERN,
                    },
                },
                {
                    "name": "limit",
                    "in": "query",
                    "description": "records per page",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_AUDIT_LIMIT,
                        "default": DEFAULT_AUDIT_LIMIT,
                    },
                },
            ],
            "responses": {
                "200": ok_response("one page of records, newest first", schema_ref("AuditPage")),
                "400": error_response("a parameter is malformed, unknown or given twice (`field` names it)"),
                "404": error_response("UnknownKey: the inventory manages no such key"),
                "502": UPSTREAM,
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi_document",
            "summary": "This document",
            "responses": {"200": ok_response("the OpenAPI document of this API", {"type": "object"})},
        }
    },
}


OPERATIONS.update(REVOCATION_OPERATIONS)
SCHEMAS.update(REVOCATION_SCHEMAS)
OPERATIONS.update(STATUS_OPERATIONS)
SCHEMAS.update(STATUS_SCHEMAS)


def openapi_document(
    operations: dict[str, dict[str, dict[str, Any]]] = OPERATIONS, schemas: dict[str, Any] = SCHEMAS
) -> dict[str, Any]:
    """The whole document: each operation gets the function-key security and the answers every route can give."""
    paths: dict[str, Any] = {}
    for path, methods in operations.items():
        paths[path] = {}
        for method, operation in methods.items():
            built = copy.deepcopy(operation)
            built.setdefault("security", SECURITY)
            built["responses"] = {**copy.deepcopy(COMMON_RESPONSES), **built["responses"]}
            paths[path][method] = built
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "cmk-guardian operator API",
            "version": API_VERSION,
            "description": (
                "Customer-managed keys in Azure Key Vault: their state, operators' rotations and the audit trail. "
                "Every bad request is refused before anything is read or changed."
            ),
        },
        "servers": [{"url": SERVER}],
        "paths": paths,
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": copy.deepcopy(schemas)},
    }
