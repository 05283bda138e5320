"""`POST /api/revocations` and `/api/restorations` judged at the edge: each refusal names its field."""

from __future__ import annotations

import json

import pytest

from shared.errors import InvalidInput, UnsupportedMediaType
from shared.http.requests import MAX_BODY_BYTES, parse_restore_request, parse_revocation_id, parse_revoke_request

JSON = {"Content-Type": "application/json"}
MYSQL = "8e2c7d5a-1b4f-4a9e-8c3d-6f5b0a9e7d42"
GOOD = {"key": "mysql-encryption-key", "action": "revoke-access", "service": "mysql", "reason": "drill"}


def _body(**changes) -> bytes:
    document = {**GOOD, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def test_a_request_without_dry_run_is_a_dry_run():
    command = parse_revoke_request(_body(), JSON, "alice")
    assert command.dry_run is True and command.service == "mysql" and command.caller == "alice"


def test_principal_ids_are_kept_lower_case_and_disable_key_takes_a_confirmation():
    command = parse_revoke_request(_body(service=..., principal_id=MYSQL.upper()), JSON, "alice")
    assert command.principal_id == MYSQL
    shred = parse_revoke_request(
        _body(service=..., action="disable-key", dry_run=False, confirm="mysql-encryption-key"), JSON, "a"
    )
    assert shred.confirm == "mysql-encryption-key" and shred.dry_run is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b"", "body"),
        (b"x" * (MAX_BODY_BYTES + 1), "body"),
        (_body(key=7), "key"),
        (_body(key="no such/key/at all"), "key"),
        (_body(action="shred"), "action"),
        (_body(action=...), "action"),
        (_body(reason=...), "reason"),
        (_body(reason="  "), "reason"),
        (_body(reason="two\nlines"), "reason"),
        (_body(dry_run="false"), "dry_run"),
        (_body(principal_id=MYSQL), "principal_id"),  # both principal and service
        (_body(service=...), "principal_id"),  # neither
        (_body(service=..., principal_id="not-a-guid"), "principal_id"),
        (_body(service="my sql"), "service"),
        (_body(action="disable-key"), "service"),
        (_body(service=..., action="disable-key", dry_run=False), "confirm"),
        (_body(confirm="mysql-encryption-key"), "confirm"),
        (_body(extra=1), "extra"),
        (b'{"key": "a", "key": "b"}', "key"),
    ],
)
def test_bad_revocation_requests_name_their_field(body, field):
    with pytest.raises(InvalidInput) as refused:
        parse_revoke_request(body, JSON, "alice")
    assert refused.value.field == field


def test_only_json_is_read():
    with pytest.raises(UnsupportedMediaType):
        parse_revoke_request(_body(), {"Content-Type": "text/plain"}, "alice")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"reason": "x"}, "revocation_id"),
        ({"revocation_id": "ABC", "reason": "x"}, "revocation_id"),
        ({"revocation_id": "0" * 32}, "reason"),
        ({"revocation_id": "0" * 32, "reason": "x", "force": True}, "force"),
    ],
)
def test_bad_restorations_name_their_field(document, field):
    with pytest.raises(InvalidInput) as refused:
        parse_restore_request(json.dumps(document).encode(), JSON, "bob")
    assert refused.value.field == field


@pytest.mark.parametrize("value", [None, "", "0" * 31, "g" * 32, "0" * 32 + "/x"])
def test_a_malformed_revocation_id_in_the_route_is_refused(value):
    with pytest.raises(InvalidInput) as refused:
        parse_revocation_id(value)
    assert refused.value.field == "id"
