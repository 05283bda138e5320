"""In-memory revocation ledger: which principals an operator revoked from which key, on purpose."""

from __future__ import annotations

import threading
from datetime import datetime


class FakeRevocations:
    def __init__(self) -> None:
        self._revoked: dict[str, dict[str, tuple[str, datetime]]] = {}
        self._lock = threading.Lock()

    def revoked(self, key: str) -> set[str]:
        with self._lock:
            return set(self._revoked.get(key.lower(), {}))

    def record(self, key: str, principal_id: str, *, reason: str, at: datetime) -> None:
        with self._lock:
            self._revoked.setdefault(key.lower(), {})[principal_id.lower()] = (reason, at)

    def clear(self, key: str, principal_id: str) -> None:
        with self._lock:
            self._revoked.get(key.lower(), {}).pop(principal_id.lower(), None)
