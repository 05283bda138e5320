"""The envelope around an event: which schema it uses (Event Grid or CloudEvents), the fields every event carries,
and its `data` object, however it was sent.

Both schemas reach the same webhook, mixed freely in one delivery, and name the same things differently (`eventType`
and `type`, `topic` and `source`); reading them here once lets the event parsers ignore the difference.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.events.fields import Fields, malformed
from shared.events.values import CLOUD_EVENTS, EVENT_GRID, EnvelopeSchema
from shared.untrusted import type_name


@dataclass(frozen=True)
class EnvelopeNames:
    type: str
    time: str
    topic: str


ENVELOPE_NAMES = {
    EVENT_GRID: EnvelopeNames(type="eventType", time="eventTime", topic="topic"),
    CLOUD_EVENTS: EnvelopeNames(type="type", time="time", topic="source"),
}


@dataclass(frozen=True)
class Common:
    """What every event's envelope carries, read once for the parser of its type."""

    event_id: str
    event_time: datetime | None
    topic: str | None
    subject: str | None
    schema: EnvelopeSchema


def detect_schema(envelope: Fields) -> EnvelopeSchema:
    """CloudEvents when `specversion` is present, or `type` without `eventType`; Event Grid otherwise."""
    if envelope.has("specversion"):
        return CLOUD_EVENTS
    if envelope.has("type") and not envelope.has("eventType"):
        return CLOUD_EVENTS
    return EVENT_GRID


def data(envelope: Fields, *, required: bool) -> Fields:
    """The `data` object. Tolerates data sent as a JSON string and CloudEvents `data_base64` holding JSON."""
    value = envelope.get("data")
    label = "data"
    if value is None and envelope.has("data_base64"):
        label = "data_base64"
        encoded = envelope.get("data_base64")
        if not isinstance(encoded, str):
            malformed(f"data_base64: expected a base64 string, got {type_name(encoded)}")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            malformed("data_base64: not valid base64-encoded UTF-8")
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            malformed(f"{label}: a string that is not valid JSON")
    if value is None:
        if required:
            malformed(f"{label}: missing")
        return Fields({}, "data.")
    if not isinstance(value, Mapping):
        malformed(f"{label}: expected an object, got {type_name(value)}")
    return Fields(value, "data.")
