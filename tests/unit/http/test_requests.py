"""Operators' requests at the edge: every way a body, a header or a query string can be wrong is refused with the
field named, and what the caller sent is quoted only capped and escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.errors import InvalidInput, UnsupportedMediaType
from shared.http.callers import FUNCTION_KEY_CALLER
from shared.http.commands import AuditQuery, RotateCommand
from shared.http.requests import (
    DEFAULT_AUDIT_LIMIT,
    MAX_BODY_BYTES,
    MAX_REASON_CHARS,
    caller_from,
    parse_audit_request,
    parse_rotate_request,
)

JSON = {"Content-Type": "application/json"}
URL = "https://app.example/api/audit"


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def refused(raw: bytes, headers: dict | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_rotate_request(raw, JSON if headers is None else headers)
    return caught.value


def test_a_good_request_becomes_a_command_with_the_function_key_as_caller():
    command = parse_rotate_request(body({"key": "aks-encryption-key", "reason": "suspected leak"}), JSON)
    assert command == RotateCommand("aks-encryption-key", "suspected leak", FUNCTION_KEY_CALLER)


def test_vault_qualified_key_names_and_json_with_charset_are_accepted():
    headers = {"content-type": "Application/JSON; charset=UTF-8"}
    command = parse_rotate_request(body({"key": "kv-cmk/aks-encryption-key", "reason": "r"}), headers)
    assert command.key == "kv-cmk/aks-encryption-key"


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b'{"key": "aks-encryption-key", "reason": ', "body", "not valid JSON"),
        (b"", "body", "empty"),
        (b"   ", "body", "empty"),
        (b"\xff\xfe{}", "body", "not UTF-8"),
        (b'{"key": "k", "reason": NaN}', "body", "NaN is not a JSON value"),
        (b"[" * 2000 + b"]" * 2000, "body", "nests too deeply"),
        (body(["aks-encryption-key", "r"]), "body", "must be a JSON object, got array"),
        (body("aks-encryption-key"), "body", "got string"),
        (body(None), "body", "got null"),
        (body({"reason": "r"}), "key", "is required"),
        (body({"key": "aks-encryption-key"}), "reason", "is required"),
        (body({"key": "aks-encryption-key", "reason": None}), "reason", "is required"),
        (body({"key": "aks-encryption-key", "reason": "   "}), "reason", "must not be blank"),
        (body({"key": "", "reason": "r"}), "key", "must not be blank"),
        (body({"key": 5, "reason": "r"}), "key", "must be a string, got number"),
        (body({"key": "aks-encryption-key", "reason": ["r"]}), "reason", "must be a string, got array"),
        (body({"key": "aks-encryption-key", "reason": True}), "reason", "got boolean"),
        (body({"key": "aks encryption key", "reason": "r"}), "key", "is not a key name"),
        (body({"key": "a/b/c", "reason": "r"}), "key", "is not a key name"),
        (body({"key": "k" * 128, "reason": "r"}), "key", "is not a key name"),
        (body({"key": "aks-encryption-key", "reason": "x" * (MAX_REASON_CHARS + 1)}), "reason", "at most 500"),
        (body({"key": "aks-encryption-key", "reason": "line\nforged: ok"}), "reason", "control characters"),
        (body({"key": "aks-encryption-key", "reason": "bell\x07"}), "reason", "control characters"),
        (body({"key": "aks-encryption-key", "reason": "r", "force": True}), "force", "unknown field 'force'"),
        (b'{"key": "aks-encryption-key", "reason": "a", "reason": "b"}', "reason", "more than once"),
    ],
    ids=[
        "malformed-json",
        "empty",
        "blank",
        "not-utf8",
        "nan",
        "deep-nesting",
        "array",
        "string",
        "null",
        "missing-key",
        "missing-reason",
        "null-reason",
        "blank-reason",
        "blank-key",
        "key-number",
        "reason-array",
        "reason-boolean",
        "key-with-spaces",
        "key-two-slashes",
        "key-too-long",
        "reason-too-long",
        "reason-newline",
        "reason-control",
        "unknown-field",
        "duplicate-field",
    ],
)
def test_each_bad_body_is_refused_naming_its_field(raw, field, words):
    error = refused(raw)
    assert error.field == field
    assert words in error.reason
    assert error.code == "InvalidField"


def test_every_unknown_field_is_named_and_the_allowed_ones_listed():
    error = refused(body({"key": "k", "reason": "r", "zeta": 1, "alpha": 2}))
    assert error.field == "alpha"
    assert "'alpha', 'zeta'" in error.reason and "allowed: key, reason" in error.reason


def test_an_unnamed_unknown_field_is_the_bodys():
    error = refused(body({"key": "k", "reason": "r", "": 1}))
    assert error.field == "body" and "unknown field ''" in error.reason


def test_an_unknown_field_name_is_escaped_and_capped():
    error = refused(body({"key": "k", "reason": "r", "x\n" + "y" * 500: 1}))
    assert "\n" not in error.field and "\n" not in error.reason
    assert len(error.field) <= 64 and len(error.reason) < 300


def test_the_size_is_judged_on_the_raw_bytes_before_parsing():
    padded = b'{"key": "aks-encryption-key", "reason": "r"}' + b" " * MAX_BODY_BYTES  # valid JSON, too big
    error = refused(padded)
    assert error.field == "body" and f"at most {MAX_BODY_BYTES}" in error.reason
    assert refused(b"{" * (MAX_BODY_BYTES + 1)).field == "body"  # never handed to the parser at all
    assert "bytes" in refused(b"{" * (MAX_BODY_BYTES + 1)).reason


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}],
    ids=["missing", "text", "form"],
)
def test_a_body_that_is_not_json_by_its_content_type_is_unsupported(headers):
    error = refused(body({"key": "aks-encryption-key", "reason": "r"}), headers)
    assert isinstance(error, UnsupportedMediaType)
    assert error.field == "Content-Type" and "application/json" in error.reason


def test_a_charset_other_than_utf8_is_unsupported():
    error = refused(body({"key": "k", "reason": "r"}), {"Content-Type": "application/json; charset=latin-1"})
    assert isinstance(error, UnsupportedMediaType) and "utf-8" in error.reason


@pytest.mark.parametrize(
    ("headers", "caller"),
    [
        ({}, "function-key"),
        ({"x-ms-client-principal-name": "alice@example.org"}, "alice@example.org"),
        ({"X-MS-CLIENT-PRINCIPAL-ID": "7a1f0d1e-0000-4000-8000-000000000001"}, "7a1f0d1e-0000-4000-8000-000000000001"),
        (
            {"X-MS-CLIENT-PRINCIPAL-NAME": "bob", "X-MS-CLIENT-PRINCIPAL-ID": "7a1f0d1e-0000-4000-8000-000000000001"},
            "bob (7a1f0d1e-0000-4000-8000-000000000001)",  # the name a label beside the object id that is judged
        ),
        ({"X-MS-CLIENT-PRINCIPAL-NAME": "   "}, "function-key"),
        ({"x-functions-key": "s3cr3t-function-key"}, "function-key"),
    ],
    ids=["none", "name", "id", "name-and-id", "blank-name", "function-key-never-shown"],
)
def test_the_caller_is_the_signed_in_principal_else_the_function_key(headers, caller):
    assert caller_from(headers) == caller


def test_a_caller_header_is_escaped_and_capped():
    caller = caller_from({"X-MS-CLIENT-PRINCIPAL-NAME": "eve\r\nforged line" + "x" * 1000})
    assert "\n" not in caller and "\r" not in caller
    assert len(caller) <= 128 and caller.endswith("...")


def test_the_command_carries_the_caller():
    headers = {**JSON, "X-MS-CLIENT-PRINCIPAL-NAME": "alice@example.org"}
    assert parse_rotate_request(body({"key": "k", "reason": "r"}), headers).caller == "alice@example.org"


# --- GET /api/audit ---------------------------------------------------------------------------------------------------


def test_no_parameters_ask_for_the_newest_page():
    assert parse_audit_request(URL) == AuditQuery(None, None, None, DEFAULT_AUDIT_LIMIT)


def test_every_parameter_is_read_and_the_function_key_parameter_ignored():
    query = parse_audit_request(
        f"{URL}?key=aks-encryption-key&since=2026-12-01T10:00:00%2B02:00&continuation=abc&limit=200&code=fkey"
    )
    assert query == AuditQuery("aks-encryption-key", datetime(2026, 12, 1, 8, tzinfo=UTC), "abc", 200)
    assert query.since.tzinfo is UTC


def test_since_with_z_is_utc():
    assert parse_audit_request(f"{URL}?since=2026-12-01T00:00:00Z").since == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("since=2026-12-01T00:00:00", "since", "has no offset"),
        ("since=2026-12-01", "since", "has no offset"),
        ("since=yesterday", "since", "not an ISO-8601 time"),
        ("since=2026-12-01T00:00:00+01:00", "since", "%2B"),  # an unescaped + reads as a space
        ("since=", "since", "must not be blank"),
        ("since=1969-12-31T23:59:59Z", "since", "is before 1970-01-01T00:00:00Z"),
        ("since=0001-01-01T00:00:00%2B01:00", "since", "out of range in UTC"),
        ("since=9999-12-31T23:59:59-01:00", "since", "out of range in UTC"),
        ("limit=0", "limit", "from 1 to 200"),
        ("limit=201", "limit", "from 1 to 200"),
        ("limit=-1", "limit", "from 1 to 200"),
        ("limit=ten", "limit", "from 1 to 200"),
        ("limit=1_0", "limit", "from 1 to 200"),
        ("limit=%2B5", "limit", "from 1 to 200"),
        ("limit=", "limit", "from 1 to 200"),
        ("key=", "key", "must not be blank"),
        ("key=not%20a%20key", "key", "is not a key name"),
        ("continuation=", "continuation", "must not be blank"),
        ("continuation=" + "c" * 3000, "continuation", "at most 2048"),
        ("order=asc", "order", "unknown query parameter 'order'"),
        ("limit=5&limit=6", "limit", "more than once"),
    ],
    ids=[
        "naive-since",
        "date-only",
        "not-a-time",
        "unescaped-plus",
        "blank-since",
        "before-1970",
        "before-year-one-utc",
        "after-year-9999-utc",
        "limit-zero",
        "limit-over",
        "limit-negative",
        "limit-word",
        "limit-underscore",
        "limit-plus",
        "limit-blank",
        "blank-key",
        "bad-key",
        "blank-continuation",
        "long-continuation",
        "unknown-parameter",
        "repeated-parameter",
    ],
)
def test_each_bad_query_is_refused_naming_its_parameter(query, field, words):
    with pytest.raises(InvalidInput) as caught:
        parse_audit_request(f"{URL}?{query}")
    assert caught.value.field == field
    assert words in caught.value.reason
