"""In-memory claims with Table Storage's semantics: insert fails on conflict, replace and delete are ETag-guarded.

Thread-safe, so race tests can run many claimers against one fake as they would against one table.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import datetime, timedelta

from shared.coordination.claims import Claim, ClaimResult, ClaimStatus, outcome_json
from shared.errors import PreconditionFailed


class FakeClaims:
    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}
        self._lock = threading.Lock()

    def claim(self, claim_id: str, owner: str, *, now: datetime, ttl: timedelta) -> ClaimResult:
        fresh = Claim(claim_id, owner, ClaimStatus.IN_PROGRESS, now, now + ttl, {}, uuid.uuid4().hex)
        with self._lock:
            existing = self._claims.get(claim_id)
            if existing is not None and existing.status is ClaimStatus.IN_PROGRESS and existing.owner == owner:
                return ClaimResult(True, existing)  # owners are per attempt: the same owner is a retry of this claim
            if existing is None or (existing.status is ClaimStatus.IN_PROGRESS and existing.expires_at <= now):
                self._claims[claim_id] = fresh
                return ClaimResult(True, fresh)
            return ClaimResult(False, existing)

    def complete(self, claim: Claim, outcome: dict) -> Claim:
        stored = json.loads(outcome_json(outcome))  # what a table keeps: JSON, bounded, checked before the write
        with self._lock:
            current = self._claims.get(claim.claim_id)
            if current is None or current.etag != claim.etag:
                raise PreconditionFailed(f"claim {claim.claim_id}: taken over or released meanwhile")
            done = dataclasses.replace(current, status=ClaimStatus.COMPLETED, outcome=stored, etag=uuid.uuid4().hex)
            self._claims[claim.claim_id] = done
            return done

    def release(self, claim: Claim) -> None:
        with self._lock:
            current = self._claims.get(claim.claim_id)
            if current is not None and current.etag == claim.etag:
                del self._claims[claim.claim_id]

    def get(self, claim_id: str) -> Claim | None:
        with self._lock:
            return self._claims.get(claim_id)
