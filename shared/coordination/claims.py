"""Claims: who may perform an act that is not idempotent (create a key version), decided by one insert.

A claim is keyed on the state it acts on (`rotate|{vault host}|{key}|{from version}`), not on the delivery that
noticed it, so the event, the sweep, an operator and a second instance all race for the same row and exactly one wins.
An in-progress claim carries an expiry: a holder that crashed is taken over once it passes (an ETag-guarded replace,
so two takers cannot both win). A completed claim keeps its outcome, so a late duplicate learns what was done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.errors import InvalidInput

# A Table string property holds at most 64 KiB (32K UTF-16 units): an outcome is a summary, never a payload.
MAX_OUTCOME_CHARS = 30_000


class ClaimStatus(StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Claim:
    claim_id: str
    owner: str  # one id per attempt (uuid4), never a principal
    status: ClaimStatus
    taken_at: datetime
    expires_at: datetime  # in progress: when another may take over; completed: kept for the record
    outcome: dict = field(default_factory=dict, compare=False, hash=False)  # completed: what was done
    etag: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ClaimResult:
    """`taken`: the caller now holds `claim` and must complete or release it. Otherwise `claim` is the existing one:
    in progress under another owner (not yet expired), or completed with its outcome."""

    taken: bool
    claim: Claim


def rotation_claim_id(vault_host: str, key_name: str, from_version: str) -> str:
    return f"rotate|{vault_host.lower()}|{key_name.lower()}|{from_version.lower()}"


def outcome_json(outcome: dict) -> str:
    """The outcome as stored with a completed claim: a JSON object small enough for one table property.
    InvalidInput naming `outcome` otherwise, before anything is written (every store checks the same way)."""
    if not isinstance(outcome, dict):
        raise InvalidInput("outcome", "must be a JSON object")
    try:
        text = json.dumps(outcome, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("outcome", f"not JSON-serialisable ({exc})") from None
    if len(text) > MAX_OUTCOME_CHARS:
        raise InvalidInput("outcome", f"too large ({len(text)} characters as JSON, at most {MAX_OUTCOME_CHARS})")
    return text
