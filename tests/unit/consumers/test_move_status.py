"""ARM's Azure-AsyncOperation documents, read as a move's status: every terminal word ARM uses, and nothing else,
ends the follow-up."""

from __future__ import annotations

import pytest

from shared.azure.consumers import status_from_arm
from shared.errors import UnexpectedResponse
from shared.moves import MoveStatus


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "InProgress"}, MoveStatus("InProgress")),
        ({"status": "Accepted"}, MoveStatus("InProgress")),  # not terminal: followed on
        ({"status": "Updating"}, MoveStatus("InProgress")),
        ({"status": "Succeeded"}, MoveStatus("Succeeded")),
        ({"status": "succeeded"}, MoveStatus("Succeeded")),
        (
            {"status": "Failed", "error": {"code": "KeyVaultAccessForbidden", "message": "no access"}},
            MoveStatus("Failed", "KeyVaultAccessForbidden: no access"),
        ),
        ({"status": "Canceled"}, MoveStatus("Failed", "Canceled")),
    ],
)
def test_arm_operation_status(body, expected):
    assert status_from_arm(body) == expected


@pytest.mark.parametrize("body", [None, [], {}, {"status": 3}])
def test_a_document_without_a_status_is_an_unexpected_response(body):
    with pytest.raises(UnexpectedResponse):
        status_from_arm(body)


def test_only_an_unfinished_status_is_not_done():
    assert not MoveStatus("InProgress").done
    assert MoveStatus("Succeeded").done and MoveStatus("Failed", "x").done
