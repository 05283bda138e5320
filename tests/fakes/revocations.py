"""In-memory revocation ledger with the Table adapter's semantics: one active revocation per subject, ETag-guarded
updates, `open` that records nothing when the subject is already actively revoked, records kept whole and refused
(InvalidInput naming the plan) past the size the Table ledger refuses."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import uuid

from shared.errors import NotFound, PreconditionFailed
from shared.revocation import Revocation, RevocationAction, RevocationState, check_record_size


class FakeRevocations:
    def __init__(self) -> None:
        self._records: dict[str, Revocation] = {}
        self._active: dict[str, str] = {}  # subject -> revocation id
        self._lock = threading.Lock()
        self._etags = itertools.count(1)

    def _stamped(self, revocation: Revocation) -> Revocation:
        check_record_size(json.dumps(revocation.to_json(), sort_keys=True))  # what the Table ledger refuses too
        stored = dataclasses.replace(revocation, etag=f"W/{next(self._etags)}")
        self._records[stored.revocation_id] = stored
        return stored

    def revoked(self, key: str) -> set[str]:
        with self._lock:
            prefix = f"access|{key.lower()}|"
            return {subject[len(prefix) :] for subject in self._active if subject.startswith(prefix)}

    def shredded(self, key: str) -> str | None:
        with self._lock:
            return self._active.get(f"disable|{key.lower()}")

    def open(self, revocation: Revocation) -> tuple[Revocation, bool]:
        with self._lock:
            existing = self._active.get(revocation.subject)
            if existing == revocation.revocation_id:
                return self._records[existing], True  # a retry of the open that made it
            if existing is not None:
                return self._records[existing], False
            stamped = self._stamped(revocation)  # refused when too large: then no marker either
            self._active[revocation.subject] = revocation.revocation_id
            return stamped, True

    def get(self, revocation_id: str) -> Revocation:
        with self._lock:
            found = self._records.get(revocation_id)
        if found is None:
            raise NotFound(f"revocation {revocation_id} was never recorded")
        return found

    def update(self, revocation: Revocation) -> Revocation:
        with self._lock:
            current = self._records.get(revocation.revocation_id)
            if current is None or current.etag != revocation.etag:
                raise PreconditionFailed(f"revocation {revocation.revocation_id}: changed meanwhile")
            return self._stamped(revocation)

    def close(self, revocation: Revocation) -> None:
        with self._lock:
            if self._active.get(revocation.subject) == revocation.revocation_id:
                del self._active[revocation.subject]

    def active(self) -> list[Revocation]:
        with self._lock:
            return [self._records[i] for i in self._active.values()]

    # Test helper: what a test that only needs "this principal is revoked" would otherwise build by hand.
    def revoke(self, key: str, principal_id: str, *, at, reason: str = "revoked on purpose") -> Revocation:
        revocation = Revocation(
            revocation_id=uuid.uuid4().hex,
            key=key,
            action=RevocationAction.REVOKE_ACCESS,
            principal_id=principal_id.lower(),
            service=None,
            reason=reason,
            requested_by="test",
            requested_at=at,
            state=RevocationState.EXECUTED,
            plan={},
            updated_at=at,
        )
        return self.open(revocation)[0]
