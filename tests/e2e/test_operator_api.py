"""The operator API over the wire: `POST /api/rotations` rotates in the emulated vault and records it, the identical
request again rotates nothing, `GET /api/audit` reads the record back, and every bad request is refused naming its
field while the vault's versions stay as they were (counted in the emulator, not taken from the app's word)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire

pytestmark = pytest.mark.e2e

MYSQL, AKS = "mysql-encryption-key", "aks-encryption-key"


def post_rotation(wire: Wire, data: bytes, headers: dict | None = None, *, key: str | None = "function"):
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key:
        sent["x-functions-key"] = wire.system.devhost[f"{key}_key"]
    return requests.post(f"{wire.url}/api/rotations", data=data, headers=sent, timeout=60)


def rotation_body(key: str, reason: str) -> bytes:
    return json.dumps({"key": key, "reason": reason}).encode()


def version_counts(system: LocalSystem) -> dict[str, int]:
    """Each managed key's versions as the emulated vault holds them."""
    inventory = system.cloud.inventory()
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        return {k.name: len(vault.list_versions(k.ref)) for k in inventory.keys}
    finally:
        vault.close()


def current_version(system: LocalSystem, name: str) -> str:
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        return vault.get_key(system.cloud.inventory().key(name).ref).version
    finally:
        vault.close()


def audit(wire: Wire, **params) -> requests.Response:
    return wire.get("/api/audit", params=params)


def test_a_post_rotates_once_and_the_audit_trail_shows_it(system: LocalSystem, wire: Wire):
    caller = f"alice-{uuid.uuid4().hex[:8]}@example.org"
    reason = f"e2e drill {uuid.uuid4()}"
    before, old = version_counts(system), current_version(system, MYSQL)

    response = post_rotation(wire, rotation_body(MYSQL, reason), {"X-MS-CLIENT-PRINCIPAL-NAME": caller})
    assert response.status_code == 201, response.text
    rotated = response.json()
    assert (rotated["status"], rotated["old_version"]) == ("rotated", old)
    assert rotated["new_version"] == current_version(system, MYSQL) != old
    assert version_counts(system) == {**before, MYSQL: before[MYSQL] + 1}

    mine = [r for r in _records(wire, MYSQL) if r["trigger"] == f"operator:{caller}"]
    assert [(r["id"], r["outcome"], r["from_version"], r["to_version"]) for r in mine] == [
        (rotated["audit_id"], "rotated", old, rotated["new_version"])
    ]
    assert mine[0]["detail"]["requested_because"] == reason

    again = post_rotation(wire, rotation_body(MYSQL, reason), {"X-MS-CLIENT-PRINCIPAL-NAME": caller})
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["new_version"]) == ("already-rotated", rotated["new_version"])
    assert version_counts(system) == {**before, MYSQL: before[MYSQL] + 1}
    assert [r["id"] for r in _records(wire, MYSQL) if r["trigger"] == f"operator:{caller}"] == [rotated["audit_id"]]

    # `since` pages from a record's own time (the app's clock, which the local run can move): inclusive
    at = mine[0]["at"]
    assert rotated["audit_id"] in [r["id"] for r in audit(wire, key=MYSQL, since=at, limit=200).json()["records"]]


def test_without_a_signed_in_principal_the_caller_is_the_function_key(system: LocalSystem, wire: Wire):
    response = post_rotation(wire, rotation_body(AKS, f"e2e key caller {uuid.uuid4()}"))
    assert response.status_code == 201, response.text
    assert response.json()["trigger"] == "operator:function-key"
    key = wire.system.devhost["function_key"]
    assert key not in json.dumps(_records(wire, AKS))


def test_the_audit_trail_pages_newest_first(system: LocalSystem, wire: Wire):
    for n in range(2):
        assert post_rotation(wire, rotation_body(AKS, f"e2e paging {n} {uuid.uuid4()}")).status_code == 201
    first = audit(wire, key=AKS, limit=1)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["records"]) == 1 and page["continuation"]
    second = audit(wire, key=AKS, limit=1, continuation=page["continuation"]).json()
    assert len(second["records"]) == 1
    assert second["records"][0]["at"] <= page["records"][0]["at"]
    assert second["records"][0]["id"] != page["records"][0]["id"]


def _records(wire: Wire, key: str) -> list[dict]:
    response = audit(wire, key=key, limit=200)
    assert response.status_code == 200, response.text
    return response.json()["records"]


BIG = json.dumps({"key": MYSQL, "reason": "r" * 450, "pad": "x" * 5000}).encode()


@pytest.mark.parametrize(
    ("data", "headers", "status", "field"),
    [
        (b'{"key": "mysql-encryption-key", "reason": ', {}, 400, "body"),
        (json.dumps([MYSQL, "r"]).encode(), {}, 400, "body"),
        (json.dumps({"key": 42, "reason": "r"}).encode(), {}, 400, "key"),
        (json.dumps({"key": MYSQL, "reason": 42}).encode(), {}, 400, "reason"),
        (json.dumps({"key": MYSQL}).encode(), {}, 400, "reason"),
        (json.dumps({"key": MYSQL, "reason": "  "}).encode(), {}, 400, "reason"),
        (json.dumps({"reason": "r"}).encode(), {}, 400, "key"),
        (json.dumps({"key": MYSQL, "reason": "r", "version": "abc"}).encode(), {}, 400, "version"),
        (json.dumps({"key": MYSQL, "reason": "r" * 501}).encode(), {}, 400, "reason"),
        (BIG, {}, 400, "body"),
        (rotation_body(MYSQL, "r"), {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (rotation_body("no-such-key", "r"), {}, 404, None),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "key-not-a-string",
        "reason-not-a-string",
        "missing-reason",
        "blank-reason",
        "missing-key",
        "unknown-field",
        "reason-too-long",
        "oversize-body",
        "not-json",
        "unknown-key",
    ],
)
def test_a_bad_rotation_request_names_its_field_and_creates_no_version(
    system: LocalSystem, wire: Wire, data, headers, status, field
):
    before = version_counts(system)
    response = post_rotation(wire, data, headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is None:
        assert error["code"] == "UnknownKey" and "no-such-key" in error["message"]
    else:
        assert error["field"] == field and error["message"]
    assert version_counts(system) == before


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"since": "2026-12-01T00:00:00"}, 400, "since"),
        ({"since": "last tuesday"}, 400, "since"),
        ({"since": "1969-07-20T20:17:00Z"}, 400, "since"),
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "201"}, 400, "limit"),
        ({"limit": "many"}, 400, "limit"),
        ({"order": "oldest"}, 400, "order"),
        ({"continuation": "not-issued-by-the-trail"}, 400, "continuation"),
        ({"key": "no-such-key"}, 404, None),
    ],
    ids=[
        "naive-since",
        "bad-since",
        "since-1969",
        "limit-zero",
        "limit-over",
        "limit-word",
        "unknown-parameter",
        "bad-token",
        "key",
    ],
)
def test_a_bad_audit_query_names_its_parameter(system: LocalSystem, wire: Wire, params, status, field):
    before = version_counts(system)
    response = audit(wire, **params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.get("field") == field and error["message"]
    if field is None:
        assert error["code"] == "UnknownKey"
    assert version_counts(system) == before


@pytest.mark.parametrize("route", ["rotations", "audit"])
def test_both_routes_need_the_function_key(wire: Wire, route):
    before = version_counts(wire.system)
    if route == "rotations":
        assert post_rotation(wire, rotation_body(MYSQL, "no key"), key=None).status_code == 401
    else:
        assert requests.get(f"{wire.url}/api/audit", timeout=30).status_code == 401
    assert version_counts(wire.system) == before
