"""What a consumer move (an ARM long-running PATCH of a resource's key) reports: started, then its status.

A move is started once and followed through delayed queue messages, never waited on: the start answers with the
operation to follow (ARM's `Azure-AsyncOperation` URL, or None when ARM finished it synchronously) and each check
reads that operation's status once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MoveStatusValue = Literal["InProgress", "Succeeded", "Failed"]


@dataclass(frozen=True)
class MoveStarted:
    """ARM accepted the PATCH. `operation_url`: where its status is read; None when ARM answered it at once."""

    operation_url: str | None


@dataclass(frozen=True)
class MoveStatus:
    """The operation's status as ARM reports it (Canceled counts as Failed), with ARM's error when it failed."""

    status: MoveStatusValue
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"
