"""The operator API's handlers over fakes: what each rotation outcome answers, and the audit trail paged back.

The answers are what `function_app` sends as they stand (status, JSON body, headers), so these tests pin the HTTP
contract of `POST /api/rotations` and `GET /api/audit` without a host.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from functions.api.answers import error_answer, rotation_answer
from functions.api.audit_log import read_audit
from functions.rotation.rotate import CLAIM_TTL
from functions.rotation.triggers import rotate_now
from shared.audit import AuditRecord
from shared.coordination.claims import rotation_claim_id
from shared.errors import InvalidInput, ServiceUnavailable, Throttled
from shared.http.commands import AuditQuery, RotateCommand
from shared.inventory.model import UnknownKey

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


class FailingCreates:
    """The fake vault, refusing every new version with `error` (as a throttled or unavailable vault would)."""

    def __init__(self, vault, error: Exception) -> None:
        self._vault, self._error = vault, error

    def __getattr__(self, name):
        return getattr(self._vault, name)

    def rotate_key(self, key):
        raise self._error

    def create_key(self, key, **kwargs):
        raise self._error


def rotate(world, command: RotateCommand, **overrides):
    return rotate_now(command, inventory=world.inventory, **{**world.rotation_ports(), **overrides})


def versions(world, name: str) -> int:
    return len(world.vault.list_versions(world.key(name).ref))


def test_a_rotation_answers_201_with_old_and_new_version_and_its_audit_record(world):
    old = world.vault.get_key(world.key(AKS).ref).version
    answer = rotation_answer(rotate(world, RotateCommand(AKS, "quarterly drill", caller="alice@example.org")))
    assert answer.status == 201
    new = world.vault.get_key(world.key(AKS).ref).version
    assert (answer.body["status"], answer.body["old_version"], answer.body["new_version"]) == ("rotated", old, new)
    [record] = world.audit.all()
    assert answer.body["audit_id"] == record.record_id
    assert record.trigger == "operator:alice@example.org"
    json.dumps(answer.body)


def test_the_identical_request_again_answers_200_already_rotated_and_makes_no_version(world):
    first = rotation_answer(rotate(world, RotateCommand(AKS, "quarterly drill")))
    world.clock.advance(timedelta(minutes=1))
    again = rotation_answer(rotate(world, RotateCommand(AKS, "quarterly drill")))
    assert again.status == 200
    assert again.body["status"] == "already-rotated"
    assert again.body["new_version"] == first.body["new_version"]
    assert versions(world, AKS) == 2


def test_a_rotation_in_progress_elsewhere_answers_409_and_makes_no_version(world):
    managed = world.key(AKS)
    current = world.vault.get_key(managed.ref).version
    world.claims.claim(
        rotation_claim_id(managed.ref.vault_host, managed.name, current),
        "the sweep",
        now=world.clock.now(),
        ttl=CLAIM_TTL,
    )
    answer = rotation_answer(rotate(world, RotateCommand(AKS, "drill")))
    assert answer.status == 409
    assert answer.body["error"]["code"] == "Conflict"
    assert answer.body["rotation"]["status"] == "in-progress"
    assert versions(world, AKS) == 1


@pytest.mark.parametrize(
    ("error", "status", "code", "headers"),
    [
        (ServiceUnavailable("key k: 503"), 502, "ServiceUnavailable", {}),
        (Throttled("key k: 429", 7.2), 429, "Throttled", {"Retry-After": "8"}),
    ],
    ids=["unavailable", "throttled"],
)
def test_a_failed_rotation_answers_as_its_error_in_the_table(world, error, status, code, headers):
    outcome = rotate(world, RotateCommand(MYSQL, "drill"), vault=FailingCreates(world.vault, error))
    answer = rotation_answer(outcome)
    assert (answer.status, answer.body["error"]["code"], answer.headers) == (status, code, headers)
    assert answer.body["rotation"]["status"] == "failed"
    assert answer.body["rotation"]["audit_id"] == world.audit.all()[-1].record_id
    assert versions(world, MYSQL) == 1
    # the request's claim was released: the same request, once the vault recovers, rotates
    assert rotation_answer(rotate(world, RotateCommand(MYSQL, "drill"))).status == 201


def test_an_unknown_key_answers_404_and_nothing_is_recorded(world):
    with pytest.raises(UnknownKey) as caught:
        rotate(world, RotateCommand("no-such-key", "drill"))
    answer = error_answer(caught.value)
    assert (answer.status, answer.body["error"]["code"]) == (404, "UnknownKey")
    assert world.audit.all() == [] and versions(world, AKS) == versions(world, MYSQL) == 1


def record(world, key: str, minutes: int) -> AuditRecord:
    return world.audit.append(
        AuditRecord(uuid.uuid4().hex, world.clock.now() + timedelta(minutes=minutes), "rotate", "timer", key, "rotated")
    )


def test_the_audit_trail_is_read_newest_first_and_paged(world):
    made = [record(world, AKS if i % 2 else MYSQL, i) for i in range(5)]
    first = read_audit(AuditQuery(limit=2), **_audit_ports(world))
    assert [r.record_id for r in first.records] == [made[4].record_id, made[3].record_id]
    assert first.continuation is not None
    rest = read_audit(AuditQuery(continuation=first.continuation, limit=50), **_audit_ports(world))
    assert [r.record_id for r in rest.records] == [m.record_id for m in reversed(made[:3])]
    assert rest.continuation is None
    body = first.to_json()
    assert set(body) == {"records", "continuation"} and body["records"][0]["id"] == made[4].record_id
    json.dumps(rest.to_json())


def test_the_audit_trail_of_one_key_since_a_time(world):
    made = [record(world, AKS, i) for i in range(3)] + [record(world, MYSQL, 10)]
    since = world.clock.now() + timedelta(minutes=1)
    page = read_audit(AuditQuery(key="AKS-Encryption-Key", since=since), **_audit_ports(world))
    assert [r.record_id for r in page.records] == [made[2].record_id, made[1].record_id]


def test_the_audit_trail_of_a_key_the_inventory_does_not_manage_is_404_not_an_empty_page(world):
    record(world, AKS, 0)
    with pytest.raises(UnknownKey) as caught:
        read_audit(AuditQuery(key="no-such-key"), **_audit_ports(world))
    assert error_answer(caught.value).status == 404


def test_a_continuation_the_trail_did_not_issue_is_400_naming_it(world):
    with pytest.raises(InvalidInput) as caught:
        read_audit(AuditQuery(continuation="forged"), **_audit_ports(world))
    answer = error_answer(caught.value)
    assert (answer.status, answer.body["error"]["field"]) == (400, "continuation")


def test_the_rotation_an_operator_asked_for_is_in_the_trail_with_its_caller(world):
    rotate(world, RotateCommand(AKS, "drill", caller="alice@example.org"))
    page = read_audit(AuditQuery(key=AKS, since=datetime(2000, 1, 1, tzinfo=UTC)), **_audit_ports(world))
    [entry] = page.to_json()["records"]
    assert (entry["trigger"], entry["outcome"], entry["detail"]["requested_because"]) == (
        "operator:alice@example.org",
        "rotated",
        "drill",
    )


def _audit_ports(world) -> dict:
    return {"inventory": world.inventory, "audit": world.audit}


def test_a_version_unlike_the_inventorys_answers_502_with_the_differences():
    from functions.rotation.rotate import RotationOutcome, RotationStatus

    outcome = RotationOutcome(
        AKS, RotationStatus.FAILED, "v2 differs from the inventory: kty is RSA", "operator:x", "v1", "v2", "a"
    )
    answer = rotation_answer(outcome)
    assert (answer.status, answer.body["error"]["code"]) == (502, "UnexpectedResponse")
    assert "kty is RSA" in answer.body["error"]["message"]
    assert answer.body["rotation"]["new_version"] == "v2"
