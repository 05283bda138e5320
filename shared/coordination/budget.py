"""The shared re-wrap budget's values and its arithmetic, the same for every backend (the Table adapter and the fake).

A window is `window` long and aligned to the Unix epoch, so every worker on every instance computes the same window
from its clock; its index is whole windows since 1970. A grant of 0 says when the next window opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.errors import InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BudgetGrant:
    granted: int  # operations the caller may spend now, 0..want
    retry_after: float = 0.0  # seconds until the next window, when nothing was granted


def check_request(want: int, limit_per_window: int, window: timedelta) -> None:
    """InvalidInput naming the argument that no budget could honour."""
    for name, value, least in (("want", want, 0), ("limit_per_window", limit_per_window, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(name, f"must be an integer of at least {least}")
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise InvalidInput("window", "must be a positive duration")


def window_index(now: datetime, window: timedelta) -> int:
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return (aware - EPOCH) // window


def seconds_to_window(now: datetime, window: timedelta, index: int) -> float:
    """Seconds from `now` until window `index` opens (at least a millisecond, so a caller always waits)."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return max((EPOCH + window * index - aware).total_seconds(), 0.001)


def take(used: int, want: int, limit: int) -> int:
    """What a reservation of `want` gets from a window that has spent `used` of `limit`."""
    return max(0, min(want, limit - used))
