"""A webhook body -> typed events: one event object or an array, either schema, each parsed or rejected on its own.

Everything that reaches the Event Grid webhook is untrusted, so nothing here raises: a body or an event the app cannot
use becomes a Rejection naming the field and what was wrong, and one bad element never costs the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from shared.events.envelope import ENVELOPE_NAMES, Common, data, detect_schema
from shared.events.fields import Fields, Rejected, instant, malformed, peek_text, reject, required_text, text
from shared.events.keyvault import key_event, vault_event
from shared.events.role_assignments import role_assignment_event
from shared.events.scope import ManagedScope
from shared.events.values import (
    KEY_EXPIRED,
    KEY_NEAR_EXPIRY,
    KEY_NEW_VERSION_CREATED,
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    SUBSCRIPTION_VALIDATION,
    VAULT_ACCESS_POLICY_CHANGED,
    EnvelopeSchema,
    KeyEvent,
    KeyExpired,
    KeyNearExpiry,
    KeyNewVersionCreated,
    ParsedEvent,
    Rejection,
    RejectReason,
    SubscriptionValidation,
)
from shared.untrusted import describe_value, type_name

# Event types from the namespaces we subscribe to but do not act on (secret and certificate events from the same
# vault, ARM writes of other resources, failures, cancellations, subscription deletion) are "not ours"; anything
# from another namespace is an unknown type, which more likely means a mis-wired subscription.
_SUBSCRIBED_NAMESPACES = ("microsoft.keyvault.", "microsoft.resources.", "microsoft.eventgrid.")

_HANDLED_TYPES = {
    t.lower(): t
    for t in (
        KEY_NEW_VERSION_CREATED,
        KEY_NEAR_EXPIRY,
        KEY_EXPIRED,
        VAULT_ACCESS_POLICY_CHANGED,
        RESOURCE_WRITE_SUCCESS,
        RESOURCE_DELETE_SUCCESS,
        SUBSCRIPTION_VALIDATION,
    )
}

_KEY_EVENT_CLASSES: dict[str, type[KeyEvent]] = {
    KEY_NEW_VERSION_CREATED: KeyNewVersionCreated,
    KEY_NEAR_EXPIRY: KeyNearExpiry,
    KEY_EXPIRED: KeyExpired,
}


def parse_delivery(body: bytes | str | object, scope: ManagedScope) -> list[ParsedEvent | Rejection]:
    """Parse a whole webhook body: one event object or an array of them, either schema, mixed freely.

    `body` may be raw bytes, text, or an already-decoded JSON value. Never raises: a body that is not JSON becomes
    one MALFORMED rejection; an empty array gives an empty list.
    """
    try:
        value = _decode_body(body)
    except Rejected as rejected:
        return [Rejection(rejected.reason, rejected.message)]
    if isinstance(value, list):
        results: list[ParsedEvent | Rejection] = []
        for index, element in enumerate(value):
            item = parse_event(element, scope)
            if isinstance(item, Rejection):
                item = replace(item, message=f"body[{index}]: {item.message}")
            results.append(item)
        return results
    if isinstance(value, Mapping):
        return [parse_event(value, scope)]
    return [Rejection(RejectReason.MALFORMED, f"body: expected a JSON object or array, got {type_name(value)}")]


def parse_event(obj: object, scope: ManagedScope) -> ParsedEvent | Rejection:
    """Parse one event object (Event Grid or CloudEvents schema, detected from its fields). Never raises."""
    if not isinstance(obj, Mapping):
        return Rejection(RejectReason.MALFORMED, f"event: expected an object, got {type_name(obj)}")
    envelope = Fields(obj, "")
    schema = detect_schema(envelope)
    event_id: str | None = None
    event_type: str | None = None
    try:
        names = ENVELOPE_NAMES[schema]
        event_type = required_text(envelope, names.type)
        event_id = required_text(envelope, "id")
        return _parse_typed(envelope, schema, event_id, event_type, scope)
    except Rejected as rejected:
        return Rejection(rejected.reason, rejected.message, event_id or peek_text(envelope, "id"), event_type)


def _parse_typed(
    envelope: Fields, schema: EnvelopeSchema, event_id: str, raw_type: str, scope: ManagedScope
) -> ParsedEvent:
    names = ENVELOPE_NAMES[schema]
    event_type = _HANDLED_TYPES.get(raw_type.lower())
    if event_type is None:
        if raw_type.lower().startswith(_SUBSCRIBED_NAMESPACES):
            reject(RejectReason.NOT_OURS, f"{names.type}: {describe_value(raw_type)} is not an event this app acts on")
        reject(RejectReason.UNKNOWN_TYPE, f"{names.type}: unknown event type {describe_value(raw_type)}")
    event_time = instant(envelope.get(names.time), names.time)
    topic = text(envelope, names.topic)
    subject = text(envelope, "subject")
    common = Common(event_id, event_time, topic, subject, schema)

    if event_type in _KEY_EVENT_CLASSES:
        return key_event(_KEY_EVENT_CLASSES[event_type], common, data(envelope, required=True), scope)
    if event_type == VAULT_ACCESS_POLICY_CHANGED:
        return vault_event(common, data(envelope, required=False), scope)
    if event_type == SUBSCRIPTION_VALIDATION:
        handshake = data(envelope, required=True)
        return SubscriptionValidation(
            event_id=event_id,
            event_time=event_time,
            validation_code=required_text(handshake, "validationCode"),
            validation_url=text(handshake, "validationUrl"),
            topic=topic,
            schema=schema,
        )
    return role_assignment_event(event_type, common, data(envelope, required=True), scope)


def _decode_body(body: object) -> object:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            malformed("body: not UTF-8 text")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except RecursionError:
            malformed("body: JSON nested too deeply")
        except ValueError as error:
            malformed(f"body: not valid JSON ({describe_value(str(error), limit=120)})")
    return body
