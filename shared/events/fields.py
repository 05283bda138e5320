"""Reading fields of an untrusted event the way Key Vault's events need, and the one way out of a parse: Rejected.

Key Vault's events change the case of field names between schema generations, carry stray whitespace and send
numbers as strings (see Microsoft's own samples); every reader here tolerates that, and refuses what is really wrong
by raising Rejected with a message that names the field as it sits in the payload.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from shared.events.values import RejectReason
from shared.untrusted import describe_value, type_name


class Rejected(Exception):
    """Unwinds a parse to shared.events.delivery.parse_event, which turns it into a Rejection; never escapes it."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def reject(reason: RejectReason, message: str) -> NoReturn:
    raise Rejected(reason, message)


def malformed(message: str) -> NoReturn:
    raise Rejected(RejectReason.MALFORMED, message)


class Fields:
    """A JSON object read the way Key Vault's events need: names case-insensitive, surrounding whitespace ignored.

    Two spellings of one name with different values (`"id"` and `"Id"`) make the field ambiguous: rejected rather
    than guessed. `prefix` ("data.") makes messages name the field as it sits in the payload.
    """

    def __init__(self, obj: Mapping[Any, Any], prefix: str) -> None:
        self._prefix = prefix
        self._values: dict[str, Any] = {}
        self._ambiguous: set[str] = set()
        for name, value in obj.items():
            if not isinstance(name, str):
                continue
            norm = name.strip().lower()
            if norm in self._values and not _same_json(self._values[norm], value):
                self._ambiguous.add(norm)
            self._values.setdefault(norm, value)

    def has(self, name: str) -> bool:
        return self._values.get(name.lower()) is not None

    def get(self, name: str) -> Any:
        """The value, or None when missing or null."""
        norm = name.lower()
        if norm in self._ambiguous:
            malformed(f"{self._prefix}{name}: given more than once with different values (names differ only in case)")
        return self._values.get(norm)

    def label(self, name: str) -> str:
        return f"{self._prefix}{name}"


def _same_json(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except RecursionError:
        return False


def text(fields: Fields, name: str) -> str | None:
    """An optional string field, stripped; None when absent, null or blank. Any other JSON type is MALFORMED."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        malformed(f"{fields.label(name)}: expected a string, got {type_name(value)}")
    return value.strip() or None


def required_text(fields: Fields, name: str) -> str:
    """A string field that must be present and not blank."""
    value = text(fields, name)
    if value is None:
        raw = fields.get(name)
        malformed(f"{fields.label(name)}: {'empty' if isinstance(raw, str) else 'missing'}")
    return value


def peek_text(fields: Fields, name: str) -> str | None:
    """Best-effort read for a rejection's context; never rejects."""
    try:
        value = text(fields, name)
    except Rejected:
        return None
    return value


def instant(value: object, label: str) -> datetime | None:
    """A point in time from seconds since the epoch (number or numeric string) or an ISO-8601 string.

    Naive ISO times are taken as UTC (Event Grid always means UTC). Blank or null is None.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        malformed(f"{label}: expected seconds since the epoch or an ISO-8601 time, got {type_name(value)}")
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        try:
            seconds: float | int = float(stripped)
        except ValueError:
            return _iso_instant(stripped, label)
    else:
        seconds = value
    try:
        if not math.isfinite(seconds):
            malformed(f"{label}: not a finite number ({describe_value(value)})")
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        malformed(f"{label}: {describe_value(value, limit=40)} seconds since the epoch is out of range")


def _iso_instant(value: str, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        malformed(f"{label}: not seconds since the epoch nor an ISO-8601 time ({describe_value(value)})")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
