"""What a consumer's availability looks like: why it cannot use its key (ConsumerUnavailable), the history of its
checks, and the state ARM shows for it, in Azure's shape (a MySQL server `Inaccessible` with its key status
`Invalid`; a disk encryption set's `autoKeyRotationError`).

Split from emulators.consumers, which runs the checks and re-exports these names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from emulators.arm_resources import MYSQL_SERVERS


class ConsumerUnavailable(Exception):
    """Why a consumer cannot use its key: an Azure-style error code and message (no key material)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class History:
    available: int = 0
    unavailable: int = 0
    last_error: str | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "available_checks": self.available,
            "unavailable_checks": self.unavailable,
            "last_error": self.last_error,
            "transitions": copy.deepcopy(self.transitions),
        }


def count_check(history: History, problem: ConsumerUnavailable | None, at: str | None) -> None:
    """Count one check, and note a transition when availability changed."""
    was = history.transitions[-1]["available"] if history.transitions else None
    if problem is None:
        history.available += 1
    else:
        history.unavailable += 1
        history.last_error = f"{problem.code}: {problem.message}"
    if was is not (problem is None):
        history.transitions.append(
            {
                "at": at,
                "available": problem is None,
                "error": history.last_error if problem else None,
            }
        )


def shown_state(
    document: dict[str, Any], problem: ConsumerUnavailable | None, rotation_problem: ConsumerUnavailable | None
) -> dict[str, Any]:
    """The read-only properties ARM shows after a check; a DES's error also reports a failed automatic rotation."""
    if document["type"].lower() == MYSQL_SERVERS:
        encryption = dict(document["properties"].get("dataEncryption") or {})
        encryption["primaryEncryptionKeyStatus"] = "Valid" if problem is None else "Invalid"
        changes: dict[str, Any] = {"dataEncryption": encryption}
        if problem is None:
            changes.update(state="Ready", stateReason=None)
        else:
            changes.update(
                state="Inaccessible",
                stateReason=(
                    f"The server lost access to its customer-managed key and denies all connections until "
                    f"access is restored ({problem.code}: {problem.message})"
                ),
            )
    else:
        shown = problem or rotation_problem
        changes = {"autoKeyRotationError": {"code": shown.code, "message": shown.message} if shown else None}
    return changes
