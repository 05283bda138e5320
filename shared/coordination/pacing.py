"""Pacing of HSM key creations: Key Vault allows 10 per 10 seconds per vault, and a sweep over many due keys must
stay under it rather than spend its time in 429 back-off (the consumers' unwraps share the vault's budget too).

A token bucket per vault, refilled continuously; `acquire` sleeps until a token is free. Time and sleep are injected
so tests can run a thousand creations without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HSM_CREATES_PER_WINDOW = 10
WINDOW_SECONDS = 10.0


class CreationPacer:
    def __init__(
        self,
        *,
        per_window: float = HSM_CREATES_PER_WINDOW / 2,  # half the budget: the vault's own rotations share it
        window_seconds: float = WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = per_window / window_seconds
        self._capacity = per_window
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # vault host -> (tokens, at)

    def acquire(self, vault_host: str) -> float:
        """Take one creation slot for `vault_host`; returns how long it waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._monotonic()
                tokens, at = self._buckets.get(vault_host, (self._capacity, now))
                tokens = min(self._capacity, tokens + (now - at) * self._rate)
                if tokens >= 1:
                    self._buckets[vault_host] = (tokens - 1, now)
                    return waited
                self._buckets[vault_host] = (tokens, now)
                delay = (1 - tokens) / self._rate
            self._sleep(delay)
            waited += delay
