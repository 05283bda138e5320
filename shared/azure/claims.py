"""The Claims port on Table Storage: one entity per claim, taken by an insert that fails on conflict.

PartitionKey is the claim id's first segment (`rotate`), RowKey the whole id, both escaped (shared.azure.tables);
the readable id is kept as a property. Taking over an expired in-progress claim, completing and releasing are all
guarded by the ETag the taker got, so of two racing takers the service lets exactly one through (412 for the other).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, utc_instant
from shared.coordination.claims import Claim, ClaimResult, ClaimStatus, outcome_json
from shared.errors import NotFound, PreconditionFailed, ServiceUnavailable

# An insert conflicts, the row is read, then it vanishes (released) or moves (taken over) before the replace: each
# round is one lost race, so a handful only happen under a storm of claimers on one id.
MAX_ROUNDS = 16


class TableClaims:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def claim(self, claim_id: str, owner: str, *, now: datetime, ttl: timedelta) -> ClaimResult:
        keys = _keys(claim_id)
        fresh = Claim(claim_id, owner, ClaimStatus.IN_PROGRESS, utc_instant(now), utc_instant(now + ttl), {})
        client = self._table.ensure()
        for _ in range(MAX_ROUNDS):
            try:
                try:
                    meta = client.create_entity(_entity(keys, fresh))
                    return ClaimResult(True, _with_etag(fresh, meta))
                except ResourceExistsError:
                    pass
                try:
                    existing = _claim(client.get_entity(*keys))
                except ResourceNotFoundError:
                    continue  # released between our insert and our read: insert again
                if existing.status is ClaimStatus.IN_PROGRESS and existing.owner == owner:
                    return ClaimResult(True, existing)  # ours: the insert landed but its reply was lost and retried
                if existing.status is not ClaimStatus.IN_PROGRESS or existing.expires_at > fresh.taken_at:
                    return ClaimResult(False, existing)
                try:
                    meta = client.update_entity(
                        _entity(keys, fresh),
                        mode=UpdateMode.REPLACE,
                        etag=existing.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                    return ClaimResult(True, _with_etag(fresh, meta))
                except (ResourceModifiedError, ResourceNotFoundError):
                    continue  # another taker won, or the holder released: read again
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"claim {claim_id}", NotFound) from exc
        raise ServiceUnavailable(f"claim {claim_id}: still contended after {MAX_ROUNDS} rounds")

    def complete(self, claim: Claim, outcome: dict) -> Claim:
        keys = _keys(claim.claim_id)
        done = Claim(claim.claim_id, claim.owner, ClaimStatus.COMPLETED, claim.taken_at, claim.expires_at, outcome)
        entity = _entity(keys, done)  # validates the outcome before anything is sent
        if not claim.etag:
            raise PreconditionFailed(f"claim {claim.claim_id}: not a claim this store handed out")
        try:
            meta = self._table.ensure().update_entity(
                entity, mode=UpdateMode.REPLACE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise PreconditionFailed(f"claim {claim.claim_id}: taken over or released meanwhile") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"claim {claim.claim_id}", NotFound) from exc
        return _with_etag(done, meta)

    def release(self, claim: Claim) -> None:
        if not claim.etag:
            return  # never delete unconditionally: without our ETag it is not provably ours
        keys = _keys(claim.claim_id)
        try:
            self._table.ensure().delete_entity(
                *keys, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )  # a missing entity is no error to delete_entity
        except ResourceModifiedError:
            return  # somebody took it over: theirs now
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"claim {claim.claim_id}", NotFound) from exc

    def get(self, claim_id: str) -> Claim | None:
        keys = _keys(claim_id)
        try:
            return _claim(self._table.ensure().get_entity(*keys))
        except ResourceNotFoundError:
            return None
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"claim {claim_id}", NotFound) from exc


def _keys(claim_id: str) -> tuple[str, str]:
    row = checked_key("claim_id", claim_id)
    return checked_key("claim_id", claim_id.split("|", 1)[0]), row


def _entity(keys: tuple[str, str], claim: Claim) -> dict:
    return {
        "PartitionKey": keys[0],
        "RowKey": keys[1],
        "ClaimId": claim.claim_id,
        "Owner": claim.owner,
        "Status": claim.status.value,
        "TakenAt": claim.taken_at,
        "ExpiresAt": claim.expires_at,
        "Outcome": outcome_json(claim.outcome),
    }


def _claim(entity: TableEntity) -> Claim:
    return Claim(
        claim_id=entity["ClaimId"],
        owner=entity["Owner"],
        status=ClaimStatus(entity["Status"]),
        taken_at=utc_instant(entity["TakenAt"]),
        expires_at=utc_instant(entity["ExpiresAt"]),
        outcome=json.loads(entity.get("Outcome") or "{}"),
        etag=entity.metadata["etag"],
    )


def _with_etag(claim: Claim, meta: dict) -> Claim:
    return dataclasses.replace(claim, etag=meta["etag"])
