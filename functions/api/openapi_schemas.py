"""The parts of the OpenAPI document every route shares: the patterns and limits the parsers enforce, the security
schemes, the request and answer schemas, and the answers every route can give (functions.api.openapi assembles them).
"""

from __future__ import annotations

from typing import Any

from shared.http.requests import (
    MAX_REASON_CHARS,
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
            "origin": {"type": "string", "enum": ["generated", "imported"]},
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


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def ok_response(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# Answers every route can give: 400 for a query parameter it does not take (shared.http.parse_query), the host's 401
# (no or a wrong key; empty body) and the app's own 500 (a setting or the inventory to fix, or a bug: InternalError
# with no details).
COMMON_RESPONSES = {
    "400": error_response(
        "a query parameter the route does not take (the host's `code` aside), or one given twice: `field` names it"
    ),
    "401": {"description": "no function key, or a wrong one (answered by the host, empty body)"},
    "500": error_response(
        "the app's settings or inventory are unusable (the operator's to fix), or a bug (InternalError)"
    ),
}
UPSTREAM = error_response("Key Vault, ARM or Table Storage refused or failed")
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}},
}
