"""Event Grid's two wire shapes (Event Grid schema and CloudEvents 1.0): what a topic accepts and what a webhook gets.

One `Event` value holds an event whichever way it arrived; it renders itself in the schema a subscription asked for.
Event Grid converts Event Grid schema input to CloudEvents output; the emulator also converts the other way so one
custom topic can serve both kinds of subscriber (Azure fixes a topic's input schema instead).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from emulators.arm_ids import same_id

EVENTGRID_SCHEMA = "EventGridSchema"
CLOUDEVENT_SCHEMA = "CloudEventSchemaV1_0"
SCHEMAS = (EVENTGRID_SCHEMA, CLOUDEVENT_SCHEMA)

# dataVersion of system events whose publisher does not say: Azure Resource Manager events are "2", the rest "1".
_DATA_VERSIONS = {"Microsoft.Resources.": "2", "Microsoft.EventGrid.": "2"}


def default_data_version(event_type: str) -> str:
    return next((v for prefix, v in _DATA_VERSIONS.items() if event_type.startswith(prefix)), "1")


def utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class InvalidEvent(ValueError):
    """A published event Event Grid would refuse: the message names the event index and the field."""


@dataclass
class Event:
    id: str
    topic: str
    subject: str
    event_type: str
    event_time: str
    data: Any
    data_version: str
    origin: str  # "system" (emitted by an emulator), "topic" (published to the custom topic), "admin" (injected)
    cloud_event: dict[str, Any] | None = field(default=None)  # as received, when it came in as a CloudEvent

    def envelope(self, schema: str) -> dict[str, Any]:
        if schema == CLOUDEVENT_SCHEMA:
            if self.cloud_event is not None:
                return dict(self.cloud_event)
            return {
                "id": self.id,
                "source": self.topic,
                "subject": self.subject,
                "type": self.event_type,
                "time": self.event_time,
                "data": self.data,
                "specversion": "1.0",
            }
        return {
            "id": self.id,
            "topic": self.topic,
            "subject": self.subject,
            "eventType": self.event_type,
            "eventTime": self.event_time,
            "data": self.data,
            "dataVersion": self.data_version,
            "metadataVersion": "1",
        }

    def to_record(self) -> dict[str, Any]:
        """What the inspection API shows: the Event Grid schema envelope plus where the event came from."""
        record = self.envelope(EVENTGRID_SCHEMA)
        record["origin"] = self.origin
        if self.cloud_event is not None:
            record["cloudEvent"] = self.cloud_event
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        return cls(
            id=record["id"],
            topic=record["topic"],
            subject=record["subject"],
            event_type=record["eventType"],
            event_time=record["eventTime"],
            data=record.get("data"),
            data_version=record["dataVersion"],
            origin=record.get("origin", "system"),
            cloud_event=record.get("cloudEvent"),
        )


def _text(item: dict[str, Any], name: str, where: str, *, allow_empty: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value.strip() and not allow_empty):
        raise InvalidEvent(f"{where}.{name}: required, a {'string' if allow_empty else 'non-empty string'}")
    return value


def _time(item: dict[str, Any], name: str, where: str) -> str:
    value = _text(item, name, where)
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEvent(f"{where}.{name}: not an ISO 8601 date-time ({value!r})") from exc
    return value


def parse_eventgrid_event(item: object, where: str, topic_id: str) -> Event:
    """One Event Grid schema event as published to a custom topic (id, subject, eventType, eventTime, data,
    dataVersion required; a topic, if given, must be this topic)."""
    if not isinstance(item, dict):
        raise InvalidEvent(f"{where}: must be a JSON object")
    if "data" not in item:
        raise InvalidEvent(f"{where}.data: required")
    topic = item.get("topic")
    if topic is not None and (not isinstance(topic, str) or not same_id(topic, topic_id)):
        raise InvalidEvent(f"{where}.topic: must be omitted or equal this topic's id ({topic_id})")
    return Event(
        id=_text(item, "id", where),
        topic=topic_id,
        subject=_text(item, "subject", where, allow_empty=True),
        event_type=_text(item, "eventType", where),
        event_time=_time(item, "eventTime", where),
        data=item["data"],
        data_version=_text(item, "dataVersion", where, allow_empty=True),
        origin="topic",
    )


def parse_cloud_event(item: object, where: str, topic_id: str, now: dt.datetime) -> Event:
    """One CloudEvents 1.0 event (id, source, type, specversion "1.0" required; time optional)."""
    if not isinstance(item, dict):
        raise InvalidEvent(f"{where}: must be a JSON object")
    if item.get("specversion") != "1.0":
        raise InvalidEvent(f"{where}.specversion: required, must be '1.0' ({item.get('specversion')!r})")
    _text(item, "source", where)
    event_time = _time(item, "time", where) if "time" in item else utc_text(now)
    subject = item.get("subject", "")
    if not isinstance(subject, str):
        raise InvalidEvent(f"{where}.subject: must be a string")
    return Event(
        id=_text(item, "id", where),
        topic=topic_id,
        subject=subject,
        event_type=_text(item, "type", where),
        event_time=event_time,
        data=item.get("data", item.get("data_base64")),
        data_version=str(item.get("dataschema") or "1"),
        origin="topic",
        cloud_event=dict(item),
    )
