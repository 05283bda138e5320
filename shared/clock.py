"""Clocks: the system clock in production; in the local run, the emulated cloud's movable clock.

When the emulators' clock is moved forward 90 days, Key Vault rotates and expires keys on emulated time; the app must
judge "near expiry" and "rotation overdue" on the same time, or the local run would contradict itself.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from datetime import UTC, datetime

from shared.errors import ServiceUnavailable


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RemoteClock:
    """Reads `{"timestamp": <unix seconds>}` from a URL (the emulators' GET /admin/clock)."""

    def __init__(self, url: str, ca_bundle: str | None = None) -> None:
        self._url = url
        self._context = ssl.create_default_context(cafile=ca_bundle) if url.startswith("https") else None

    def now(self) -> datetime:
        try:
            with urllib.request.urlopen(self._url, context=self._context, timeout=10) as resp:
                return datetime.fromtimestamp(float(json.load(resp)["timestamp"]), tz=UTC)
        except (OSError, ValueError, KeyError) as exc:
            raise ServiceUnavailable(f"clock at {self._url}: {exc}") from exc
