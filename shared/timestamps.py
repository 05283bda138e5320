"""One textual form for instants the app shows people and machines: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(value: datetime | None) -> str | None:
    """`2026-12-01T22:10:03Z` (microseconds kept when present); None stays None. A naive datetime is taken as UTC,
    which is what every SDK here returns for Key Vault's unix-seconds attributes."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """The inverse of iso_utc, for what the app stored itself: always an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
