"""The operator API's edge: who is calling, what a request body becomes, and one table from errors to responses.

shared.http.callers decides whom to trust as the caller; shared.http.requests parses and bounds each route's input
into a command (shared.http.commands); shared.http.errors maps every error to its status and body.
"""

from shared.http.callers import FUNCTION_KEY_CALLER, CallerPolicy, identify, process_policy, status_viewer
from shared.http.commands import AlertsQuery, AuditQuery, RestoreCommand, RevokeCommand, RotateCommand
from shared.http.errors import STATUS_BY_ERROR, error_response
from shared.http.requests import (
    ALERT_STATES,
    DEFAULT_ALERTS_LIMIT,
    DEFAULT_AUDIT_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_BODY_BYTES,
    MAX_CONTINUATION_CHARS,
    MAX_REASON_CHARS,
    MAX_SINCE_CHARS,
    caller_from,
    parse_alerts_request,
    parse_audit_request,
    parse_key_name,
    parse_query,
    parse_restore_request,
    parse_revocation_id,
    parse_revoke_request,
    parse_rotate_request,
)

__all__ = [
    "ALERT_STATES",
    "DEFAULT_ALERTS_LIMIT",
    "DEFAULT_AUDIT_LIMIT",
    "FUNCTION_KEY_CALLER",
    "MAX_AUDIT_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_CONTINUATION_CHARS",
    "MAX_REASON_CHARS",
    "MAX_SINCE_CHARS",
    "STATUS_BY_ERROR",
    "AlertsQuery",
    "AuditQuery",
    "CallerPolicy",
    "RestoreCommand",
    "RevokeCommand",
    "RotateCommand",
    "caller_from",
    "error_response",
    "identify",
    "parse_alerts_request",
    "parse_audit_request",
    "parse_key_name",
    "parse_query",
    "parse_restore_request",
    "parse_revocation_id",
    "parse_revoke_request",
    "parse_rotate_request",
    "process_policy",
    "status_viewer",
]
