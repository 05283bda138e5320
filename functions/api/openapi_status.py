"""The OpenAPI entries of what operators look at: one key (`/keys/{name}`), the alert log (`/alerts`) and the status
page (`/status`), with their schemas (functions.api.openapi adds them to the document)."""

from __future__ import annotations

from typing import Any

from functions.api.openapi_schemas import (
    NULLABLE_STRING,
    UPSTREAM,
    error_response,
    ok_response,
    schema_ref,
)
from shared.http import ALERT_STATES, DEFAULT_ALERTS_LIMIT, MAX_AUDIT_LIMIT

NO_PARAMETERS = "No query parameter but the host's `code`: any other is 400 naming it."

STATUS_OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/keys/{name}": {
        "get": {
            "operationId": "key_status",
            "summary": "One managed key: as in /keys, plus its versions on a timeline and principals named by role",
            "description": NO_PARAMETERS,
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "the key's name in the inventory",
                    "schema": {
                        "type": "string",
                        "pattern": r"^[0-9A-Za-z-]{1,127}$",
                        "examples": ["mysql-encryption-key"],
                    },
                }
            ],
            "responses": {
                "200": ok_response("the key", schema_ref("KeyView")),
                "400": error_response("the name is not a key name, or a query parameter is unknown"),
                "404": error_response("UnknownKey: the inventory manages no such key (the message names it)"),
                "502": UPSTREAM,
            },
        }
    },
    "/alerts": {
        "get": {
            "operationId": "alerts",
            "summary": "The alerts queued lately, newest first, with their delivery state",
            "description": "Each parameter at most once; an unknown parameter is 400 (except the host's `code`).",
            "parameters": [
                {
                    "name": "state",
                    "in": "query",
                    "description": "only alerts in this delivery state",
                    "schema": {"type": "string", "enum": list(ALERT_STATES)},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "description": "alerts to return",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_AUDIT_LIMIT,
                        "default": DEFAULT_ALERTS_LIMIT,
                    },
                },
            ],
            "responses": {
                "200": ok_response("the latest alerts", schema_ref("AlertList")),
                "400": error_response("a parameter is malformed, unknown or given twice (`field` names it)"),
                "502": UPSTREAM,
            },
        }
    },
    "/status": {
        "get": {
            "operationId": "status",
            "summary": "The status page: every key, the latest audit records and alerts, as one HTML page",
            "description": (
                NO_PARAMETERS + " Read-only, no script. Behind App Service authentication it is served to signed-in "
                "operators (the operator app role, or CMK_OPERATORS) without the function key."
            ),
            "responses": {
                "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
                "400": error_response("a query parameter is unknown or given twice (`field` names it)"),
                "403": error_response("CallerNotAllowed: behind App Service authentication, not a signed-in operator"),
                "502": UPSTREAM,
            },
        }
    },
}

STATUS_SCHEMAS: dict[str, Any] = {
    "KeyView": {
        "allOf": [{"$ref": "#/components/schemas/KeyStatus"}],
        "type": "object",
        "required": ["versions", "revocations"],
        "properties": {
            "versions": {
                "description": "newest first (an object with `error` when the versions could not be read)",
                "type": ["array", "object"],
                "items": {"$ref": "#/components/schemas/KeyVersionView"},
            },
            "revocations": {"type": "array", "items": {"type": "object"}},
        },
    },
    "KeyVersionView": {
        "type": "object",
        "required": ["version", "state", "current", "enabled", "deks", "consumers"],
        "properties": {
            "version": {"type": "string"},
            "state": {"type": "string", "enum": ["current", "previous", "retired", "disabled by a revocation"]},
            "current": {"type": "boolean"},
            "enabled": {"type": "boolean"},
            "created": NULLABLE_STRING,
            "expires": NULLABLE_STRING,
            "expired": {"type": "boolean"},
            "revocation_id": NULLABLE_STRING,
            "deks": {"type": "integer"},
            "consumers": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AlertList": {
        "type": "object",
        "required": ["alerts"],
        "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertEntry"}}},
    },
    "AlertEntry": {
        "type": "object",
        "required": ["id", "queued_at", "updated_at", "type", "subject", "severity", "message", "state", "attempts"],
        "properties": {
            "id": {"type": "string"},
            "queued_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "type": {"type": "string", "examples": ["CmkGuardian.Key.Rotated"]},
            "subject": {"type": "string"},
            "severity": {"type": "string", "enum": ["info", "warning", "high", "critical"]},
            "message": {"type": "string"},
            "key": NULLABLE_STRING,
            "state": {"type": "string", "enum": list(ALERT_STATES)},
            "attempts": {"type": "integer"},
            "error": NULLABLE_STRING,
            "audit_record_id": NULLABLE_STRING,
        },
    },
}
