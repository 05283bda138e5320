"""The revocation routes of the OpenAPI document (`POST /revocations`, `GET /revocations/{id}`, `POST /restorations`):
kept apart for reading, served with the rest (functions.api.openapi merges them into its routes and schemas).
"""

from __future__ import annotations

from typing import Any

from functions.api.openapi_schemas import (
    JSON,
    KEY_NAME_PATTERN,
    NULLABLE_STRING,
    PRINTABLE_TEXT_PATTERN,
    UPSTREAM,
    error_response,
    ok_response,
    schema_ref,
)
from shared.http.requests import MAX_REASON_CHARS

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
    "ReleaseRequest": {
        "type": "object",
        "required": ["key", "partition", "dek_id", "reason"],
        "additionalProperties": False,
        "properties": {
            "key": {
                "type": "string",
                "pattern": KEY_NAME_PATTERN,
                "description": "the managed key (as GET /api/keys names it)",
            },
            "partition": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": PRINTABLE_TEXT_PATTERN},
            "dek_id": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": PRINTABLE_TEXT_PATTERN},
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REASON_CHARS,
                "pattern": PRINTABLE_TEXT_PATTERN,
            },
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
    "400": error_response("the body is not a valid request (`field` names what is wrong); nothing was changed"),
    "403": error_response(
        "CallerNotAllowed: the signed-in caller is neither in CMK_OPERATORS nor holds the operator app role "
        "(CMK_OPERATOR_ROLE), or a function key alone is not enough here"
    ),
    "404": error_response("no such key in the inventory, or no such revocation (`field` names which)"),
    "409": error_response(
        "the plan may not run (its blockers and the plan are beside the error), or the revocation is "
        "still being carried out"
    ),
    "415": error_response("UnsupportedMediaType: the body is not sent as application/json (field Content-Type)"),
    "422": error_response(
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
            "requestBody": {"required": True, "content": {JSON: {"schema": schema_ref("RevokeRequest")}}},
            "responses": {
                "200": ok_response(
                    "a dry run's plan, or `already-revoked` with the first revocation's id", {"type": "object"}
                ),
                "202": ok_response("executing", schema_ref("Revocation"), LOCATION),
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
                "200": ok_response("the revocation", schema_ref("Revocation")),
                "400": error_response("the id is not 32 lower-case hex digits"),
                "404": error_response("no such revocation"),
                "502": UPSTREAM,
            },
        }
    },
    "/restorations": {
        "post": {
            "operationId": "restorations",
            "summary": "Undo a revocation",
            "requestBody": {"required": True, "content": {JSON: {"schema": schema_ref("RestoreRequest")}}},
            "responses": {
                "200": ok_response("already restored", {"type": "object"}),
                "202": ok_response("restoring", schema_ref("Revocation"), LOCATION),
                **_REFUSALS,
            },
        }
    },
    "/quarantine/release": {
        "post": {
            "operationId": "quarantine_release",
            "summary": "Take a DEK the re-wrap refused out of quarantine, so the next sweep tries it again",
            "requestBody": {"required": True, "content": {JSON: {"schema": schema_ref("ReleaseRequest")}}},
            "responses": {
                "200": ok_response("released (the audit record's id in `audit_id`)", {"type": "object"}),
                **{k: v for k, v in _REFUSALS.items() if k not in ("409", "422")},
            },
        }
    },
}
