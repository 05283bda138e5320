"""One alert's row in the alert log, and its id: the instant it was queued, inverted, then a uuid4, so that ids sort
newest first in every store (the Table adapter uses the id as its RowKey and reads a page in key order).

An entry holds what the alert says (type, subject, severity, message, key), never its data: alerts never carry key
material, and the log is a list to glance at, with the audit record id for the details.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.errors import InvalidInput
from shared.timestamps import iso_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_DIGITS = 18
_LAST = 10**INSTANT_DIGITS - 1  # > microseconds from 1970 to 9999-12-31
ALERT_ID = re.compile(r"(\d{18})-([0-9a-f]{32})")
MAX_TEXT_CHARS = 1_000  # a message longer than this is cut in the log (the CloudEvent keeps it whole)


class AlertState(StrEnum):
    PENDING = "pending"  # queued in the outbox, not yet on the topic
    SENT = "sent"  # published to the alert topic
    FAILED = "failed"  # the last attempt to publish failed; the host retries it until it poisons the message


@dataclass(frozen=True)
class AlertEntry:
    alert_id: str
    type: str
    subject: str
    severity: str
    message: str
    state: AlertState
    updated_at: datetime
    key: str | None = None
    attempts: int = 0  # publish attempts so far
    error: str | None = None  # why the last attempt failed (an error code, never a body)
    audit_record_id: str | None = None

    @property
    def queued_at(self) -> datetime:
        return alert_id_at(self.alert_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.alert_id,
            "queued_at": iso_utc(self.queued_at),
            "updated_at": iso_utc(self.updated_at),
            "type": self.type,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "key": self.key,
            "state": self.state.value,
            "attempts": self.attempts,
            "error": self.error,
            "audit_record_id": self.audit_record_id,
        }


def new_alert_id(at: datetime) -> str:
    delta = at.astimezone(UTC) - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros < 0:
        raise InvalidInput("at", "must not be before 1970")
    return f"{_LAST - micros:0{INSTANT_DIGITS}d}-{uuid.uuid4().hex}"


def check_alert_id(alert_id: object) -> str:
    if not isinstance(alert_id, str) or not ALERT_ID.fullmatch(alert_id):
        raise InvalidInput("id", "must be an alert id: 18 digits, a dash and 32 lower-case hexadecimal characters")
    return alert_id


def alert_id_at(alert_id: str) -> datetime:
    """When the alert was queued, as its id says."""
    inverted = int(check_alert_id(alert_id)[:INSTANT_DIGITS])
    return EPOCH + timedelta(microseconds=_LAST - inverted)


def cut_message(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"
