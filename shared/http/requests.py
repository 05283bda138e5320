"""Operators' HTTP requests -> commands (shared.http.commands), refused at the edge before anything is read or changed.

Pure (no azure.functions): the trigger hands over the raw body, headers and URL, so a test can send every malformed
request a person or a script can produce. Each refusal is an InvalidInput naming the field and what was wrong, and
quotes what the caller sent only through shared.untrusted (a header or a field name can carry a forged log line).
The body is judged on its raw bytes first: its size before it is decoded, its encoding before it is parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shared.errors import InvalidInput, UnsupportedMediaType
from shared.http.callers import CallerPolicy, identify
from shared.http.commands import AlertsQuery, AuditQuery, RestoreCommand, RevokeCommand, RotateCommand
from shared.timestamps import iso_utc
from shared.untrusted import describe_value, type_name

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 500
MAX_CONTINUATION_CHARS = 2048
MAX_SINCE_CHARS = 64
DEFAULT_AUDIT_LIMIT = 50
MAX_AUDIT_LIMIT = 200
EARLIEST_SINCE = datetime(1970, 1, 1, tzinfo=UTC)

ROTATE_FIELDS = ("key", "reason")
REVOKE_FIELDS = ("key", "principal_id", "service", "action", "reason", "dry_run", "confirm")
RESTORE_FIELDS = ("revocation_id", "reason")
REVOKE_ACTIONS = ("revoke-access", "disable-key")
# `code` is the function key when it is passed in the query string: Azure hands it to the function with the rest.
AUDIT_PARAMETERS = ("key", "action", "outcome", "since", "continuation", "limit")
ALERTS_PARAMETERS = ("state", "limit")
ALERT_STATES = ("pending", "sent", "failed")
DEFAULT_ALERTS_LIMIT = 50
HOST_PARAMETERS = frozenset({"code"})

# Key Vault's own rules: a key name is 1-127 letters, digits and dashes; a vault name 3-24, starting with a letter.
# `vault/key` is how the inventory tells apart two vaults' keys of the same name.
_KEY_NAME = re.compile(r"(?:[A-Za-z][0-9A-Za-z-]{2,23}/)?[0-9A-Za-z-]{1,127}")
_LIMIT = re.compile(r"[0-9]{1,4}")
# An audit record's action or outcome as the handlers write them: "rotate", "rewrap-page", "already-rotated", ...
_WORD = re.compile(r"[a-z][a-z0-9-]{0,63}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_rotate_request(body: bytes, headers: Mapping[str, str], caller: str | None = None) -> RotateCommand:
    """`POST /api/rotations`: `{"key": "...", "reason": "..."}` from a JSON body; the caller from the headers."""
    _require_json(headers)
    document = _json_object(body)
    _refuse_unknown(document, ROTATE_FIELDS, "field")
    key = _key_name(document.get("key"), "key", required=True)
    reason = _text(document.get("reason"), "reason", MAX_REASON_CHARS)
    return RotateCommand(key=key, reason=reason, caller=caller or caller_from(headers))


def parse_revoke_request(body: bytes, headers: Mapping[str, str], caller: str) -> RevokeCommand:
    """`POST /api/revocations`. Exactly one of `principal_id` and `service` for revoke-access, neither for
    disable-key; `dry_run` defaults to true, so only an explicit `false` changes anything."""
    _require_json(headers)
    document = _json_object(body)
    _refuse_unknown(document, REVOKE_FIELDS, "field")
    key = _key_name(document.get("key"), "key", required=True)
    action = document.get("action")
    if action is None:
        raise InvalidInput("action", f"is required: one of {', '.join(REVOKE_ACTIONS)}")
    if not isinstance(action, str) or action not in REVOKE_ACTIONS:
        shown = describe_value(action, limit=40, quote=True) if isinstance(action, str) else type_name(action)
        raise InvalidInput("action", f"must be one of {', '.join(REVOKE_ACTIONS)} (got {shown})")
    reason = _text(document.get("reason"), "reason", MAX_REASON_CHARS)
    dry_run = document.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run", f"must be true or false, got {type_name(dry_run)}")
    principal = document.get("principal_id")
    service = document.get("service")
    if action == "disable-key":
        for name, value in (("principal_id", principal), ("service", service)):
            if value is not None:
                raise InvalidInput(name, "is not used by disable-key, which disables the key for everyone")
    elif principal is not None and service is not None:
        raise InvalidInput("principal_id", "give either principal_id or service, not both")
    elif principal is None and service is None:
        raise InvalidInput("principal_id", "revoke-access needs principal_id (a GUID) or service (an inventory name)")
    if principal is not None:
        principal = _text(principal, "principal_id", 36)
        if not _GUID.fullmatch(principal):
            raise InvalidInput("principal_id", f"{describe_value(principal, quote=True)} is not a GUID")
        principal = principal.lower()
    if service is not None:
        service = _text(service, "service", 64)
        if not _SERVICE.fullmatch(service):
            raise InvalidInput("service", f"{describe_value(service, quote=True)} is not a service name")
    confirm = document.get("confirm")
    if confirm is not None:
        confirm = _text(confirm, "confirm", 152)
        if action != "disable-key":
            raise InvalidInput("confirm", "is only for disable-key")
    if action == "disable-key" and dry_run is False and confirm is None:
        raise InvalidInput("confirm", "executing disable-key needs confirm equal to the key's name")
    return RevokeCommand(
        key=key,
        action=action,
        reason=reason,
        caller=caller,
        principal_id=principal,
        service=service,
        dry_run=dry_run,
        confirm=confirm,
    )


def parse_restore_request(body: bytes, headers: Mapping[str, str], caller: str) -> RestoreCommand:
    """`POST /api/restorations`: `{"revocation_id": "<the revocation's id>", "reason": "..."}`."""
    _require_json(headers)
    document = _json_object(body)
    _refuse_unknown(document, RESTORE_FIELDS, "field")
    revocation_id = _text(document.get("revocation_id"), "revocation_id", 64)
    if not re.fullmatch(r"[0-9a-f]{32}", revocation_id):
        raise InvalidInput("revocation_id", "must be a revocation id: 32 lower-case hexadecimal characters")
    reason = _text(document.get("reason"), "reason", MAX_REASON_CHARS)
    return RestoreCommand(revocation_id=revocation_id, reason=reason, caller=caller)


def parse_revocation_id(value: str | None) -> str:
    """The `{id}` of `GET /api/revocations/{id}`."""
    text = (value or "").strip()
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise InvalidInput("id", "must be a revocation id: 32 lower-case hexadecimal characters")
    return text


# Outside Azure: the principal headers read as sent, the function key alone enough (what a test or a script sees).
LOCAL_POLICY = CallerPolicy(operators=frozenset(), allow_function_key_only=True, trust_headers=True)


def caller_from(headers: Mapping[str, str], policy: CallerPolicy = LOCAL_POLICY) -> str:
    """Who asked, for the audit trail, as shared.http.callers decides it (one rule for every route): the signed-in
    principal, else that a function key was used. Never the key itself; capped and escaped."""
    return identify(headers, policy).name


def parse_query(url: str, allowed: tuple[str, ...] = (), *, hint: str = "") -> dict[str, str]:
    """Every route's query string, read from the request's URL: each parameter at most once (a parameter given twice
    is refused instead of one copy silently winning) and none the route does not take, named in the 400 (the host's
    `code`, the function key, is the one exception). Every HTTP trigger calls this before it reads or changes
    anything, so `POST /api/rotations?dry_run=true` is refused instead of rotating. `hint` ends the refusal with
    where to go instead (`GET /api/keys?key=` points at `/api/keys/{name}`)."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    params = _single_values(pairs)
    try:
        _refuse_unknown(params, allowed, "query parameter", ignored=HOST_PARAMETERS)
    except InvalidInput as exc:
        if not hint:
            raise
        raise InvalidInput(exc.field, f"{exc.reason}; {hint}") from None
    return {name: value for name, value in params.items() if name not in HOST_PARAMETERS}


def parse_audit_request(url: str) -> AuditQuery:
    """`GET /api/audit?key=&action=&outcome=&since=&continuation=&limit=`."""
    params = parse_query(url, AUDIT_PARAMETERS)
    return AuditQuery(
        key=_key_name(params.get("key"), "key", required=False),
        since=_since(params.get("since")),
        continuation=_continuation(params.get("continuation")),
        limit=_limit(params.get("limit")),
        action=_word(params.get("action"), "action"),
        outcome=_word(params.get("outcome"), "outcome"),
    )


def parse_alerts_request(url: str) -> AlertsQuery:
    """`GET /api/alerts?state=&limit=`: the latest alerts, only those in `state` when given."""
    params = parse_query(url, ALERTS_PARAMETERS)
    state = params.get("state")
    if state is not None and state not in ALERT_STATES:
        shown = describe_value(state, limit=32, quote=True)
        raise InvalidInput("state", f"must be one of {', '.join(ALERT_STATES)} (got {shown})")
    limit = _limit(params.get("limit")) if "limit" in params else DEFAULT_ALERTS_LIMIT
    return AlertsQuery(state=state, limit=limit)


def parse_key_name(value: str | None) -> str:
    """The `{name}` of `GET /api/keys/{name}`: a key name as Key Vault allows it (whether the inventory manages it is
    the handler's 404)."""
    return _key_name(value, "name", required=True)


def _word(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not _WORD.fullmatch(value):
        raise InvalidInput(
            field,
            f"{describe_value(value, limit=64, quote=True)} is not an audit {field} "
            "(lower-case letters, digits and dashes, e.g. rotate, revocation, rewrap)",
        )
    return value


def _require_json(headers: Mapping[str, str]) -> None:
    """415 for anything but JSON: a form post or a text body would otherwise be read as JSON by accident."""
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = (lowered.get("content-type") or "").strip()
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        shown = describe_value(content_type, limit=80, quote=True) if content_type else "missing"
        raise UnsupportedMediaType("Content-Type", f"must be application/json (got {shown})")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("Content-Type", f"charset must be utf-8 (got {describe_value(value.strip())})")


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput("body", f"is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    if not body.strip():
        raise InvalidInput("body", 'is empty; send a JSON object such as {"key": "...", "reason": "..."}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body", f"is not UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput("body", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidInput("body", "nests too deeply to be a request") from None
    if not isinstance(document, dict):
        raise InvalidInput("body", f"must be a JSON object, got {type_name(document)}")
    return document


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A field given twice is refused: parsers disagree on which copy wins, so the caller's intent is unknown."""
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise InvalidInput(describe_value(name, limit=64), "is given more than once")
        document[name] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise InvalidInput("body", f"is not valid JSON: {name} is not a JSON value")


def _single_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidInput(describe_value(name, limit=64), "is given more than once")
        params[name] = value
    return params


def _refuse_unknown(
    given: Mapping[str, Any], allowed: tuple[str, ...], what: str, ignored: frozenset[str] = frozenset()
) -> None:
    unknown = sorted(name for name in given if name not in allowed and name not in ignored)
    if not unknown:
        return
    shown = [describe_value(name, limit=64, quote=True) for name in unknown[:5]]
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    raise InvalidInput(
        describe_value(unknown[0], limit=64) or "body",
        f"unknown {what}{'s' if len(unknown) > 1 else ''} {', '.join(shown)}{more}; "
        + (f"allowed: {', '.join(allowed)}" if allowed else f"this route takes no {what}s"),
    )


def _text(value: object, field: str, limit: int) -> str:
    if value is None:
        raise InvalidInput(field, "is required")
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type_name(value)}")
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > limit:
        raise InvalidInput(field, f"is {len(value)} characters; at most {limit} are accepted")
    if not value.isprintable():
        # A newline or an escape sequence would forge lines in the log and the alert that quote the reason.
        raise InvalidInput(field, "must be a single line of printable text (no control characters)")
    return value


def _key_name(value: object, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    name = _text(value, field, 152)
    if not _KEY_NAME.fullmatch(name):
        raise InvalidInput(
            field,
            f"{describe_value(name, limit=64, quote=True)} is not a key name "
            "(1-127 letters, digits and dashes, optionally prefixed by 'vault/')",
        )
    return name


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    text = _text(value, "since", MAX_SINCE_CHARS)
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "since",
            f"{describe_value(text, quote=True)} is not an ISO-8601 time such as 2026-12-01T00:00:00Z "
            "(in a URL, write + as %2B)",
        ) from None
    if since.tzinfo is None or since.utcoffset() is None:
        raise InvalidInput("since", f"{describe_value(text, quote=True)} has no offset; add Z or e.g. +01:00")
    try:
        since = since.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 and 9999-12-31T23:59-01:00 have no UTC instant
        raise InvalidInput("since", f"{describe_value(text, quote=True)} is out of range in UTC") from None
    if since < EARLIEST_SINCE:
        # The trail records nothing before the app existed, and its store cannot even name such an instant.
        raise InvalidInput("since", f"{describe_value(text, quote=True)} is before {iso_utc(EARLIEST_SINCE)}")
    return since


def _continuation(value: str | None) -> str | None:
    if value is None:
        return None
    return _text(value, "continuation", MAX_CONTINUATION_CHARS)


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_AUDIT_LIMIT
    if not _LIMIT.fullmatch(value) or not 1 <= int(value) <= MAX_AUDIT_LIMIT:
        raise InvalidInput(
            "limit", f"{describe_value(value, limit=32, quote=True)} is not a whole number from 1 to {MAX_AUDIT_LIMIT}"
        )
    return int(value)
