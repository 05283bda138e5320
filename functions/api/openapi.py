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

from shared.http.requests import (
    DEFAULT_AUDIT_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_CONTINUATION_CHARS,
    MAX_REASON_CHARS,
    MAX_SINCE_CHARS,
)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
SERVER = "/api"
JSON = "application/json"

# What shared.http.requests._KEY_NAME accepts: a Key Vault key name, optionally prefixed by `vault/`.
KEY_NAME_PATTERN = r"^([A-Za-z][0-9A-Za-z-]{2,23}/)?[0-9A-Za-z-]{1,127}$"
# Printable ASCII with at least one character that is not a space: a subset of what `str.isprintable()` and the
# not-blank rule accept, so that every value matching it is taken.
PRINTABLE_TEXT_PATTERN = r"^[ -~]*[!-~][ -~]*$"
# An instant with a UTC offset (or Z), from 1970 on (the parser refuses an earlier one, and one without an offset).
# Day 29-31 of a short month is a format matter (`format: date-time`), not the pattern's.
SINCE_PATTERN = (
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)

SECURITY_SCHEMES = {
    "functionKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "The function key (or the host's master key).",
    },
    "functionKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "The function key in the query string, as Azure Functions accepts it.",
    },
}
# Either scheme alone is enough.
SECURITY = [{"functionKeyHeader": []}, {"functionKeyQuery": []}]

NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error answer: `field` names the request part that was wrong (for 400 and 415).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["InvalidField", "UnknownKey"]},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            },
            "rotation": {"$ref": "#/components/schemas/RotationOutcome"},
        },
    },
    "RotateRequest": {
        "type": "object",
        "description": (
            "At most 4096 bytes of UTF-8 JSON; no field twice, no other field. `reason` may hold any printable "
            "Unicode text (no control characters); the pattern shows its ASCII subset."
        ),
        "required": ["key", "reason"],
        "additionalProperties": False,
        "properties": {
            "key": {
                "type": "string",
                "pattern": KEY_NAME_PATTERN,
                "description": "a key the inventory manages: its name, or `vault/name`",
                "examples": ["mysql-encryption-key"],
            },
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REASON_CHARS,
                "pattern": PRINTABLE_TEXT_PATTERN,
                "description": "why, for the audit trail and the alert (one line)",
                "examples": ["suspected exposure of a backup"],
            },
        },
    },
    "RotationOutcome": {
        "type": "object",
        "required": ["key", "status", "reason", "trigger", "old_version", "new_version", "audit_id"],
        "properties": {
            "key": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["rotated", "already-rotated", "in-progress", "superseded", "not-due", "failed"],
            },
            "reason": {"type": "string"},
            "trigger": {"type": "string"},
            "old_version": NULLABLE_STRING,
            "new_version": NULLABLE_STRING,
            "audit_id": NULLABLE_STRING,
        },
    },
    "AuditRecord": {
        "type": "object",
        "required": ["id", "at", "action", "trigger", "key", "outcome", "detail"],
        "properties": {
            "id": {"type": "string"},
            "at": {"type": "string"},
            "action": {"type": "string"},
            "trigger": {"type": "string"},
            "key": {"type": "string"},
            "outcome": {"type": "string"},
            "from_version": NULLABLE_STRING,
            "to_version": NULLABLE_STRING,
            "duration_ms": {"type": ["integer", "number", "null"]},
            "detail": {"type": "object"},
        },
    },
    "AuditPage": {
        "type": "object",
        "required": ["records", "continuation"],
        "properties": {
            "records": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}},
            "continuation": {
                **NULLABLE_STRING,
                "description": "pass it back as `continuation` for the next, older page; null on the last page",
            },
        },
    },
    "KeysReport": {
        "type": "object",
        "required": ["mode", "generated_at", "summary", "keys"],
        "properties": {
            "mode": {"type": "string", "enum": ["audit", "enforce"]},
            "generated_at": {"type": "string"},
            "summary": {
                "type": "object",
                "required": ["keys", "compliant", "findings"],
                "properties": {
                    "keys": {"type": "integer"},
                    "compliant": {"type": "integer"},
                    "findings": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "keys": {"type": "array", "items": {"$ref": "#/components/schemas/KeyStatus"}},
        },
    },
    "KeyStatus": {
        "type": "object",
        "required": ["name", "vault", "key_id", "version", "enabled", "compliant", "findings", "dependents"],
        "properties": {
            "name": {"type": "string"},
            "vault": {"type": "string"},
            "service": NULLABLE_STRING,
            "key_id": NULLABLE_STRING,
            "version": NULLABLE_STRING,
            "enabled": {"type": ["boolean", "null"]},
            "kty": NULLABLE_STRING,
            "size": {"type": ["integer", "null"]},
            "ops": {"type": ["array", "null"], "items": {"type": "string"}},
            "created": NULLABLE_STRING,
            "not_before": NULLABLE_STRING,
            "expires": NULLABLE_STRING,
            "rotation_policy": {"type": ["object", "null"]},
            "compliant": {"type": "boolean"},
            "findings": {"type": "array", "items": {"type": "object"}},
            "dependents": {"type": "object"},
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# Answers every route can give: the host's 401 (no or a wrong key; empty body) and the app's own 500 (a setting or
# the inventory to fix, or a bug: InternalError with no details).
COMMON_RESPONSES = {
    "401": {"description": "no function key, or a wrong one (answered by the host, empty body)"},
    "500": _error("the app's settings or inventory are unusable (the operator's to fix), or a bug (InternalError)"),
}
UPSTREAM = _error("Key Vault, ARM or Table Storage refused or failed")
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}},
}

OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/keys": {
        "get": {
            "operationId": "list_keys",
            "summary": "Every managed key: current version, attributes, rotation policy, findings and dependents",
            "responses": {
                "200": _ok("the compliance report, one entry per managed key", _ref("KeysReport")),
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
                "content": {JSON: {"schema": _ref("RotateRequest")}},
            },
            "responses": {
                "201": _ok("this request made the new version", _ref("RotationOutcome")),
                "200": _ok(
                    "already rotated: the identical request within 15 minutes, another trigger, or the vault's policy",
                    _ref("RotationOutcome"),
                ),
                "400": _error("the body is not a valid request (`field` names what is wrong); nothing was changed"),
                "404": _error("UnknownKey: the inventory manages no such key"),
                "409": _error("another rotation of this version is in progress (`rotation` carries the outcome)"),
                "415": _error("UnsupportedMediaType: the body is not sent as application/json (field Content-Type)"),
                "429": {
                    **_error("Key Vault throttled the rotation (`rotation` carries the outcome)"),
                    "headers": RETRY_AFTER,
                },
                "502": _error("the rotation failed upstream (`rotation` carries the outcome and its audit id)"),
            },
        }
    },
    "/audit": {
        "get": {
            "operationId": "audit_trail",
            "summary": "The audit trail, newest first, a page at a time",
            "description": "Each parameter at most once; an unknown parameter is 400 (except the host's `code`).",
            "parameters": [
                {
                    "name": "key",
                    "in": "query",
                    "description": "only this managed key's records (a key the inventory does not manage is 404)",
                    "schema": {"type": "string", "pattern": KEY_NAME_PATTERN},
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
                "200": _ok("one page of records, newest first", _ref("AuditPage")),
                "400": _error("a parameter is malformed, unknown or given twice (`field` names it)"),
                "404": _error("UnknownKey: the inventory manages no such key"),
                "502": UPSTREAM,
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi_document",
            "summary": "This document",
            "responses": {"200": _ok("the OpenAPI document of this API", {"type": "object"})},
        }
    },
}


# The revocation routes: kept apart for reading, served with the rest (merged into OPERATIONS and SCHEMAS below).
REVOCATION_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "32 lower-case hex digits"}
REVOCATION_SCHEMAS: dict[str, Any] = {
    "RevokeRequest": {
        "type": "object",
        "description": (
            "revoke-access names exactly one of `principal_id` and `service`; disable-key names neither, and "
            "executing it (`dry_run: false`) needs `confirm`, the key's name. `confirm` is for disable-key only."
        ),
        "required": ["key", "action", "reason"],
        "additionalProperties": False,
        "oneOf": [
            {
                "properties": {"action": {"const": "revoke-access"}},
                "required": ["principal_id"],
                "not": {"anyOf": [{"required": ["service"]}, {"required": ["confirm"]}]},
            },
            {
                "properties": {"action": {"const": "revoke-access"}},
                "required": ["service"],
                "not": {"anyOf": [{"required": ["principal_id"]}, {"required": ["confirm"]}]},
            },
            {
                "properties": {"action": {"const": "disable-key"}, "dry_run": {"const": True}},
                "not": {"anyOf": [{"required": ["principal_id"]}, {"required": ["service"]}]},
            },
            {
                "properties": {"action": {"const": "disable-key"}, "dry_run": {"const": False}},
                "required": ["dry_run", "confirm"],
                "not": {"anyOf": [{"required": ["principal_id"]}, {"required": ["service"]}]},
            },
        ],
        "properties": {
            "key": {"type": "string", "pattern": KEY_NAME_PATTERN},
            "principal_id": {
                "type": "string",
                "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            },
            "service": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
            "action": {"type": "string", "enum": ["revoke-access", "disable-key"]},
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REASON_CHARS,
                "pattern": PRINTABLE_TEXT_PATTERN,
            },
            "dry_run": {"type": "boolean", "default": True},
            "confirm": {"type": "string", "minLength": 1, "maxLength": 152, "pattern": PRINTABLE_TEXT_PATTERN},
        },
    },
    "Revocation": {
        "type": "object",
        "required": ["id", "key", "action", "state"],
        "properties": {
            "id": REVOCATION_ID,
            "key": {"type": "string"},
            "action": {"type": "string", "enum": ["revoke-access", "disable-key"]},
            "principal_id": NULLABLE_STRING,
            "service": NULLABLE_STRING,
            "state": {
                "type": "string",
                "enum": ["planned", "executed", "verified", "failed", "restoring", "restored"],
            },
            "plan": {"type": ["object", "null"]},
            "failure": NULLABLE_STRING,
            "requested_by": NULLABLE_STRING,
            "reason": NULLABLE_STRING,
        },
    },
    "RestoreRequest": {
        "type": "object",
        "required": ["revocation_id", "reason"],
        "additionalProperties": False,
        "properties": {
            "revocation_id": REVOCATION_ID,
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REASON_CHARS,
                "pattern": PRINTABLE_TEXT_PATTERN,
            },
        },
    },
}
LOCATION = {"Location": {"description": "the revocation: /api/revocations/{id}", "schema": {"type": "string"}}}
_REFUSALS = {
    "400": _error("the body is not a valid request (`field` names what is wrong); nothing was changed"),
    "403": _error(
        "CallerNotAllowed: the signed-in caller is not in CMK_OPERATORS (or a function key alone is not enough here)"
    ),
    "404": _error("no such key in the inventory, or no such revocation (`field` names which)"),
    "409": _error(
        "the plan may not run (its blockers and the plan are beside the error), or the revocation is "
        "still being carried out"
    ),
    "415": _error("UnsupportedMediaType: the body is not sent as application/json (field Content-Type)"),
    "422": _error(
        "well-formed but not meaningful: an unknown service, a principal that is no inventory identity and "
        "holds nothing, a `confirm` that is not the key's name"
    ),
    "502": UPSTREAM,
}
REVOCATION_OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/revocations": {
        "post": {
            "operationId": "revocations",
            "summary": "Revoke a principal's access to a key, or disable the key (a dry run unless dry_run is false)",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("RevokeRequest")}}},
            "responses": {
                "200": _ok("a dry run's plan, or `already-revoked` with the first revocation's id", {"type": "object"}),
                "202": _ok("executing", _ref("Revocation"), LOCATION),
                **_REFUSALS,
            },
        }
    },
    "/revocations/{id}": {
        "get": {
            "operationId": "revocation_status",
            "summary": "One revocation and where it stands",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": REVOCATION_ID}],
            "responses": {
                "200": _ok("the revocation", _ref("Revocation")),
                "400": _error("the id is not 32 lower-case hex digits"),
                "404": _error("no such revocation"),
                "502": UPSTREAM,
            },
        }
    },
    "/restorations": {
        "post": {
            "operationId": "restorations",
            "summary": "Undo a revocation",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("RestoreRequest")}}},
            "responses": {
                "200": _ok("already restored", {"type": "object"}),
                "202": _ok("restoring", _ref("Revocation"), LOCATION),
                **_REFUSALS,
            },
        }
    },
}


OPERATIONS.update(REVOCATION_OPERATIONS)
SCHEMAS.update(REVOCATION_SCHEMAS)


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
