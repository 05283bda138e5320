"""Errors -> HTTP: every status of the table, the order that keeps a subclass from being answered as its base, and a
bug answered 500 without details while its traceback goes to the log."""

from __future__ import annotations

import json
import logging

import pytest

from shared import errors
from shared.http.errors import STATUS_BY_ERROR, error_response
from shared.inventory.model import InventoryError, UnknownKey


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.InvalidInput("reason", "must be one of rotate, expire"), 400, "InvalidField"),
        (errors.MalformedMessage("type", "missing"), 400, "MalformedMessage"),
        (errors.UnsupportedMediaType("Content-Type", "must be application/json"), 415, "UnsupportedMediaType"),
        (errors.NotFound("scope /x: not found"), 404, "NotFound"),
        (errors.KeyNotFound("key k: not found"), 404, "KeyNotFound"),
        (UnknownKey("no managed key 'k'"), 404, "UnknownKey"),
        (errors.Conflict("role assignment: exists"), 409, "Conflict"),
        (errors.PreconditionFailed("dek d: etag changed"), 412, "PreconditionFailed"),
        (errors.Throttled("key k: 429", 2.1), 429, "Throttled"),
        (errors.InvalidSetting("CMK_CREDENTIAL", "must be one of default, managed-identity"), 500, "InvalidSetting"),
        (InventoryError(["inventory.yaml: keys[k].size: must be 2048, 3072 or 4096"]), 500, "InvalidInventory"),
        (errors.Forbidden("key k: Forbidden"), 502, "Forbidden"),
        (errors.KeyDisabled("key k/1: disabled"), 502, "KeyDisabled"),
        (errors.ServiceUnavailable("key k: 503"), 502, "ServiceUnavailable"),
        (errors.UnwrapFailed("key k/1: the value could not be unwrapped"), 502, "UnwrapFailed"),
        (errors.CmkError("alert topic: TooManyRedirects"), 502, "Error"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_each_error_gets_its_status_and_code(exc, status, code):
    answer = error_response(exc)
    assert answer.status == status
    assert answer.body["error"]["code"] == code
    assert answer.body["error"]["message"]
    json.dumps(answer.body)  # the body is JSON as it stands


def test_every_status_of_the_contract_is_in_the_table():
    assert {status for _, status in STATUS_BY_ERROR} == {400, 403, 404, 409, 412, 415, 422, 429, 500, 502}


def test_no_entry_is_shadowed_by_an_earlier_base():
    """First match wins, so a subclass listed after its base would never be reached."""
    kinds = [kind for kind, _ in STATUS_BY_ERROR]
    for i, earlier in enumerate(kinds):
        for later in kinds[i + 1 :]:
            assert not issubclass(later, earlier), f"{later.__name__} is answered as {earlier.__name__}"


def test_a_setting_is_the_operators_to_fix_not_the_callers():
    answer = error_response(errors.InvalidSetting("CMK_ALERT_TOPIC_ENDPOINT", "must be https"))
    assert answer.status == 500  # not its base InvalidInput's 400
    assert answer.body == {
        "error": {"code": "InvalidSetting", "field": "CMK_ALERT_TOPIC_ENDPOINT", "message": "must be https"}
    }


def test_bad_input_names_the_field():
    answer = error_response(errors.InvalidInput("keys[0].name", "not a key name ('a b')"))
    expected = {"code": "InvalidField", "field": "keys[0].name", "message": "not a key name ('a b')"}
    assert answer.body["error"] == expected


def test_an_inventory_error_lists_every_problem():
    problems = ["inventory.yaml: keys[a].size: must be 2048", "inventory.yaml: keys[b].ops: unknown 'sign'"]
    answer = error_response(InventoryError(problems))
    assert answer.body["error"]["problems"] == problems
    assert "field" not in answer.body["error"]


@pytest.mark.parametrize(("retry_after", "header"), [(2.1, "3"), (7.0, "7"), (0.0, "0")])
def test_throttled_says_when_to_come_back_in_whole_seconds(retry_after, header):
    assert error_response(errors.Throttled("key k: 429", retry_after)).headers == {"Retry-After": header}


def test_throttled_without_a_known_delay_sends_no_retry_after():
    answer = error_response(errors.Throttled("key k: 429"))
    assert answer.status == 429
    assert answer.headers == {}


def test_only_throttled_carries_headers():
    assert error_response(errors.Conflict("x")).headers == {}


def test_a_bug_is_500_without_details_and_logged_with_its_traceback(caplog):
    try:
        {}["secret-looking-detail"]
    except KeyError as exc:
        bug = exc
        with caplog.at_level(logging.ERROR, logger="cmk"):
            answer = error_response(bug)
    assert answer.status == 500
    assert answer.body == {"error": {"code": "InternalError", "message": "unexpected error; see the function log"}}
    assert "secret-looking-detail" not in json.dumps(answer.body)
    [record] = [r for r in caplog.records if r.name == "cmk"]
    assert record.exc_info is not None and record.exc_info[1] is bug
    assert "test_errors.py" in caplog.text  # the traceback, down to where the bug is
