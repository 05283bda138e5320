"""In-memory alert log: the same contract as the Table adapter (ids sort newest first, add keeps the first entry)."""

from __future__ import annotations

import threading

from shared.alertlog import AlertEntry, AlertState, check_alert_id
from shared.errors import InvalidInput

MAX_RECENT = 1000


class FakeAlertLog:
    def __init__(self) -> None:
        self._entries: dict[str, AlertEntry] = {}
        self._lock = threading.Lock()

    def add(self, entry: AlertEntry) -> AlertEntry:
        check_alert_id(entry.alert_id)
        with self._lock:
            return self._entries.setdefault(entry.alert_id, entry)

    def put(self, entry: AlertEntry) -> AlertEntry:
        check_alert_id(entry.alert_id)
        with self._lock:
            self._entries[entry.alert_id] = entry
        return entry

    def get(self, alert_id: str) -> AlertEntry | None:
        check_alert_id(alert_id)
        with self._lock:
            return self._entries.get(alert_id)

    def recent(self, *, limit: int = 50, state: AlertState | None = None) -> list[AlertEntry]:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RECENT:
            raise InvalidInput("limit", f"must be an integer from 1 to {MAX_RECENT}")
        with self._lock:
            entries = [self._entries[k] for k in sorted(self._entries)]
        return [e for e in entries if state is None or e.state == AlertState(state)][:limit]

    def all(self) -> list[AlertEntry]:
        return self.recent(limit=MAX_RECENT)
