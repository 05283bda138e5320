"""RBAC propagation: ARM lists a role assignment change at once, Key Vault's authorization applies it later.

Azure documents that a role assignment change may take up to about ten minutes to reach a service's authorization
(Key Vault included), and each change travels on its own: a grant issued before a removal can take effect after it.
So every assignment write or delete in the ARM emulator is queued here with its own delay, drawn from 0 to
`max_seconds` (default 600 emulated seconds) by a random generator seeded per change (`seed`, change number), so a
run is reproducible and nothing about the generator needs persisting. The effective view (what Key Vault's
`Authorizer` answers from) converges to ARM's: per assignment id, a change that becomes due after a later-issued change
for the same assignment has already applied is dropped. `max_seconds` 0 applies every change at once (unit-speed
tests). Role *definition* changes (custom roles) stay immediate: Azure's documented delay is about assignments, and
the app never edits role definitions.

The emulated clock decides when a change is due; `emulators.clock_walk` moves it in steps of at most a minute while
any change is pending, applying what is due and letting every consumer check its key at each step. The counters the
admin API reports (`windows`, `minute_checks`, `unavailable`) are kept here, with the pending changes, in the state
snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

DEFAULT_MAX_SECONDS = 600.0
MINUTE = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class PendingChange(Generic[T]):
    """One assignment change on its way to Key Vault: `value` is the assignment after it, None for a delete."""

    seq: int
    key: str
    value: T | None
    issued_at: float
    effective_at: float


class RbacPropagation(Generic[T]):
    """ARM's assignment changes as Key Vault sees them: the effective assignments and the changes still pending.

    Not thread-safe on its own: ArmState calls it under its lock.
    """

    def __init__(self, *, max_seconds: float = DEFAULT_MAX_SECONDS, seed: int = 0) -> None:
        self.configured_max = check_max_seconds(max_seconds)
        self.configured_seed = seed
        self.max_seconds = self.configured_max
        self.seed = seed
        self.effective: dict[str, T] = {}
        self.pending: list[PendingChange[T]] = []
        self._applied_seq: dict[str, int] = {}
        self._seq = 0
        self.windows = 0
        self.minute_checks = 0
        self.unavailable: dict[str, int] = {}
        self.last_counted_at: float | None = None

    # ---- changes ----------------------------------------------------------------------------------------------
    def record(self, key: str, value: T | None, now: float) -> PendingChange[T]:
        """A change ARM just made (value None: deleted); applied at once when max_seconds is 0."""
        self._seq += 1
        delay = random.Random(f"{self.seed}:{self._seq}").uniform(0.0, self.max_seconds) if self.max_seconds else 0.0
        change = PendingChange(self._seq, key, value, now, now + delay)
        if self.max_seconds <= 0:
            self._apply(change)
        else:
            self.pending.append(change)
        return change

    def apply_due(self, now: float) -> int:
        """Apply (or drop as superseded) every change due at `now`, in the order they fall due; how many."""
        due = sorted((c for c in self.pending if c.effective_at <= now), key=lambda c: (c.effective_at, c.seq))
        if not due:
            return 0
        self.pending = [c for c in self.pending if c.effective_at > now]
        for change in due:
            self._apply(change)
            self.windows += 1
        return len(due)

    def _apply(self, change: PendingChange[T]) -> None:
        if change.seq < self._applied_seq.get(change.key, 0):
            return  # a later-issued change for this assignment already applied: this one is stale
        self._applied_seq[change.key] = change.seq
        if change.value is None:
            self.effective.pop(change.key, None)
        else:
            self.effective[change.key] = change.value

    def next_due(self) -> float | None:
        return min((c.effective_at for c in self.pending), default=None)

    def last_due(self) -> float | None:
        return max((c.effective_at for c in self.pending), default=None)

    # ---- what the consumers saw -------------------------------------------------------------------------------
    def count_check(self, results: dict[str, bool]) -> None:
        """One round of consumer checks inside a propagation window (results: consumer id -> could use its key)."""
        self.minute_checks += 1
        for resource_id, available in results.items():
            if not available:
                self.unavailable[resource_id] = self.unavailable.get(resource_id, 0) + 1

    # ---- configuration, reset, persistence --------------------------------------------------------------------
    def set_max_seconds(self, max_seconds: float) -> None:
        """New draws use the new maximum; changes already pending keep their times."""
        self.max_seconds = check_max_seconds(max_seconds)

    def reset(self) -> None:
        """Back to the configured maximum and seed, nothing effective, pending or counted (the admin reset)."""
        self.max_seconds, self.seed = self.configured_max, self.configured_seed
        self.effective, self.pending, self._applied_seq, self._seq = {}, [], {}, 0
        self.windows, self.minute_checks, self.unavailable, self.last_counted_at = 0, 0, {}, None

    def load(self, effective: dict[str, T]) -> None:
        """Assignments restored without propagation state (an older snapshot): effective as ARM lists them."""
        self.effective = dict(effective)
        self.pending = []

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "max_seconds": self.max_seconds,
            "pending": [
                {
                    "assignment_id": c.key,
                    "change": "delete" if c.value is None else "write",
                    "issued_at": c.issued_at,
                    "effective_at": c.effective_at,
                    "due_in_seconds": max(0.0, c.effective_at - now),
                }
                for c in sorted(self.pending, key=lambda c: (c.effective_at, c.seq))
            ],
            "windows": self.windows,
            "minute_checks": self.minute_checks,
            "unavailable": dict(self.unavailable),
        }

    def snapshot(self, encode: Callable[[T], Any]) -> dict[str, Any]:
        return {
            "max_seconds": self.max_seconds,
            "seed": self.seed,
            "seq": self._seq,
            "applied_seq": dict(self._applied_seq),
            "effective": {k: encode(v) for k, v in self.effective.items()},
            "pending": [
                {
                    "seq": c.seq,
                    "key": c.key,
                    "value": None if c.value is None else encode(c.value),
                    "issued_at": c.issued_at,
                    "effective_at": c.effective_at,
                }
                for c in self.pending
            ],
            "windows": self.windows,
            "minute_checks": self.minute_checks,
            "unavailable": dict(self.unavailable),
            "last_counted_at": self.last_counted_at,
        }

    def restore(self, data: dict[str, Any], decode: Callable[[Any], T]) -> None:
        self.max_seconds = check_max_seconds(data.get("max_seconds", self.configured_max))
        self.seed = int(data.get("seed", self.seed))
        self._seq = int(data.get("seq", 0))
        self._applied_seq = {k: int(v) for k, v in data.get("applied_seq", {}).items()}
        self.effective = {k: decode(v) for k, v in data.get("effective", {}).items()}
        self.pending = [
            PendingChange(
                int(p["seq"]),
                p["key"],
                None if p["value"] is None else decode(p["value"]),
                float(p["issued_at"]),
                float(p["effective_at"]),
            )
            for p in data.get("pending", [])
        ]
        self.windows = int(data.get("windows", 0))
        self.minute_checks = int(data.get("minute_checks", 0))
        self.unavailable = {k: int(v) for k, v in data.get("unavailable", {}).items()}
        self.last_counted_at = data.get("last_counted_at")


def check_max_seconds(value: Any, field: str = "max_seconds") -> float:
    """A propagation maximum: a number of emulated seconds, 0 (immediate) to one day."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 86400:
        raise ValueError(f"{field}: expected 0 to 86400 seconds, got {value!r}")
    return float(value)
