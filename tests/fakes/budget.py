"""An in-memory shared re-wrap budget with the Table adapter's semantics (shared.coordination.budget's arithmetic),
thread-safe so racing workers in one test see one budget."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from shared.coordination.budget import BudgetGrant, check_request, seconds_to_window, take, window_index
from shared.errors import InvalidInput


class FakeRewrapBudget:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}  # scope -> (window index, used)
        self._lock = threading.Lock()
        self.reservations: list[tuple[str, int, int]] = []  # (scope, want, granted), for tests

    def reserve(self, scope: str, want: int, *, now: datetime, limit_per_window: int, window: timedelta) -> BudgetGrant:
        check_request(want, limit_per_window, window)
        if not isinstance(scope, str) or not scope:
            raise InvalidInput("scope", "must be a non-empty string")
        if want == 0:
            return BudgetGrant(0)
        index = window_index(now, window)
        with self._lock:
            stored, used = self._windows.get(scope, (index, 0))
            at = max(stored, index)
            used = used if stored >= index else 0
            granted = take(used, want, limit_per_window)
            self.reservations.append((scope, want, granted))
            if granted == 0:
                return BudgetGrant(0, seconds_to_window(now, window, at + 1))
            self._windows[scope] = (at, used + granted)
            return BudgetGrant(granted)
