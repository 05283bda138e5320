"""A revocation: an operator's deliberate removal of one principal's use of a key, or a key's crypto-shred.

It is a record before it is an act: the ledger holds it (state `planned`) before anything in Azure changes, so that
reconciliation, which runs concurrently on events and timers, already treats the principal as revoked on purpose and
never grants it back, and rotation never brings a shredded key back with a fresh, enabled version. Each revocation has
a subject (what it revokes: one principal on one key, or one key as a whole); a subject has at most one active
revocation, which is how a second identical request is recognised and answered with the first one's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.errors import InvalidInput
from shared.timestamps import iso_utc, parse_utc

REVOCATION_ID = re.compile(r"[0-9a-f]{32}")
# The largest record (its JSON) a ledger keeps: a plan of several thousand grants fits; past this a record is refused,
# never truncated, since restoration needs every removed assignment as it was.
MAX_RECORD_CHARS = 4_000_000


def check_record_size(document: str) -> None:
    """InvalidInput naming the plan (what grows) when a revocation's JSON is larger than any ledger keeps."""
    if len(document) > MAX_RECORD_CHARS:
        raise InvalidInput("plan", f"the revocation's record is {len(document)} characters, above {MAX_RECORD_CHARS}")


class RevocationAction(StrEnum):
    REVOKE_ACCESS = "revoke-access"  # the principal's key-use assignments at the key go
    DISABLE_KEY = "disable-key"  # every version is disabled: nothing can unwrap under the key (crypto-shredding)


class RevocationState(StrEnum):
    PLANNED = "planned"  # recorded; its steps are being carried out
    EXECUTED = "executed"  # carried out and seen at once; the follow-up after RBAC's propagation delay is due
    VERIFIED = "verified"  # the follow-up found it in force
    FAILED = "failed"  # a step or a check failed (`failure` says why); an identical request resumes it
    RESTORING = "restoring"  # break-glass: the grants or versions are being given back
    RESTORED = "restored"  # given back; the ledger no longer holds the subject (reconciliation manages it again)


ACTIVE_STATES = frozenset(
    {RevocationState.PLANNED, RevocationState.EXECUTED, RevocationState.VERIFIED, RevocationState.FAILED}
)


def subject_of(key: str, action: RevocationAction, principal_id: str | None) -> str:
    """What a revocation revokes, as one string: two requests with the same subject are the same revocation."""
    if action is RevocationAction.DISABLE_KEY:
        return f"disable|{key.lower()}"
    if not principal_id:
        raise InvalidInput("principal_id", "a revoke-access names the principal it revokes")
    return f"access|{key.lower()}|{principal_id.lower()}"


def check_revocation_id(value: object, field_name: str = "revocation_id") -> str:
    if not isinstance(value, str) or not REVOCATION_ID.fullmatch(value):
        raise InvalidInput(field_name, "must be a revocation id: 32 lower-case hexadecimal characters")
    return value


@dataclass(frozen=True)
class Restoration:
    """The break-glass undo of a revocation: who asked, why, what was given back, when it was seen in force."""

    reason: str
    requested_by: str
    requested_at: datetime
    audit_record_id: str
    restored: tuple[str, ...] = ()  # assignment ids re-created, versions re-enabled
    verified_at: datetime | None = None
    failure: str | None = None
    restored_at: datetime | None = None  # when it was given back: Azure applies it within propagation from then

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": iso_utc(self.requested_at),
            "audit_record_id": self.audit_record_id,
            "restored": list(self.restored),
            "verified_at": iso_utc(self.verified_at),
            "failure": self.failure,
            "restored_at": iso_utc(self.restored_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Restoration:
        return cls(
            reason=data["reason"],
            requested_by=data["requested_by"],
            requested_at=parse_utc(data["requested_at"]),
            audit_record_id=data["audit_record_id"],
            restored=tuple(data.get("restored") or ()),
            verified_at=parse_utc(data["verified_at"]) if data.get("verified_at") else None,
            failure=data.get("failure"),
            restored_at=parse_utc(data["restored_at"]) if data.get("restored_at") else None,
        )


@dataclass(frozen=True)
class Revocation:
    revocation_id: str  # uuid4 hex
    key: str  # the inventory's key name
    action: RevocationAction
    principal_id: str | None  # lower-case; None for disable-key
    service: str | None  # the inventory service whose identity it is, when the principal is one
    reason: str
    requested_by: str
    requested_at: datetime
    state: RevocationState
    plan: dict = field(compare=False, hash=False)  # RevocationPlan.to_json(), as it was when executed
    updated_at: datetime | None = None
    audit_record_id: str | None = None
    executed: tuple[str, ...] = ()  # assignment ids removed / versions disabled, as they were done
    failure: str | None = None
    verified_at: datetime | None = None
    checks: int = 0  # follow-up checks made
    restoration: Restoration | None = None
    etag: str | None = field(default=None, compare=False)
    executed_at: datetime | None = None  # when it was carried out: Azure applies it within propagation from then

    @property
    def subject(self) -> str:
        return subject_of(self.key, self.action, self.principal_id)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def moved(self, state: RevocationState, at: datetime, **changes: Any) -> Revocation:
        return replace(self, state=state, updated_at=at, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.revocation_id,
            "key": self.key,
            "action": self.action.value,
            "principal_id": self.principal_id,
            "service": self.service,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": iso_utc(self.requested_at),
            "state": self.state.value,
            "updated_at": iso_utc(self.updated_at),
            "audit_record_id": self.audit_record_id,
            "executed": list(self.executed),
            "failure": self.failure,
            "verified_at": iso_utc(self.verified_at),
            "checks": self.checks,
            "restoration": self.restoration.to_json() if self.restoration else None,
            "executed_at": iso_utc(self.executed_at),
            "plan": self.plan,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], etag: str | None = None) -> Revocation:
        return cls(
            revocation_id=data["id"],
            key=data["key"],
            action=RevocationAction(data["action"]),
            principal_id=data.get("principal_id"),
            service=data.get("service"),
            reason=data["reason"],
            requested_by=data["requested_by"],
            requested_at=parse_utc(data["requested_at"]),
            state=RevocationState(data["state"]),
            plan=dict(data.get("plan") or {}),
            updated_at=parse_utc(data["updated_at"]) if data.get("updated_at") else None,
            audit_record_id=data.get("audit_record_id"),
            executed=tuple(data.get("executed") or ()),
            failure=data.get("failure"),
            verified_at=parse_utc(data["verified_at"]) if data.get("verified_at") else None,
            checks=int(data.get("checks") or 0),
            restoration=Restoration.from_json(data["restoration"]) if data.get("restoration") else None,
            executed_at=parse_utc(data["executed_at"]) if data.get("executed_at") else None,
            etag=etag,
        )
