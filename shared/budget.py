"""What a reservation from the shared re-wrap budget returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetGrant:
    granted: int  # operations the caller may spend now, 0..want
    retry_after: float = 0.0  # seconds until the next window, when nothing was granted
