"""Event Grid and CloudEvents deliveries -> typed events, or a rejection that says why.

Everything that reaches the Event Grid webhook is untrusted input: Key Vault events whose field names change case
between schema generations and carry stray whitespace and numbers-as-strings (see Microsoft's own samples), ARM events
for every write in a resource group, secret and certificate events from the same vault, subscription handshakes.
This module is the one place that turns that into a small set of frozen values the handlers can match on, so no
handler ever looks at raw JSON. It never raises: anything it cannot use becomes a `Rejection` naming the field and what
was wrong, and the caller decides whether to log, dead-letter or ignore it.

Events are resolved against the inventory (`ManagedScope`) while parsing, so a typed event always refers to a key or
vault the project manages; everything else is rejected as OUTSIDE_INVENTORY before a handler sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, NoReturn, Protocol, TypeAlias
from urllib.parse import urlsplit

from shared.model import KeyRef

KEY_NEW_VERSION_CREATED = "Microsoft.KeyVault.KeyNewVersionCreated"
KEY_NEAR_EXPIRY = "Microsoft.KeyVault.KeyNearExpiry"
KEY_EXPIRED = "Microsoft.KeyVault.KeyExpired"
VAULT_ACCESS_POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged"
RESOURCE_WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
RESOURCE_DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
_ROLE_ASSIGNMENTS_SEGMENT = "/providers/microsoft.authorization/roleassignments/"

# Event types from the namespaces we subscribe to but do not act on (secret and certificate events from the same
# vault, ARM writes of other resources, failures, cancellations, subscription deletion) are "not ours"; anything
# from another namespace is an unknown type, which more likely means a mis-wired subscription.
_SUBSCRIBED_NAMESPACES = ("microsoft.keyvault.", "microsoft.resources.", "microsoft.eventgrid.")

EnvelopeSchema: TypeAlias = Literal["EventGrid", "CloudEvents"]
EVENT_GRID: EnvelopeSchema = "EventGrid"
CLOUD_EVENTS: EnvelopeSchema = "CloudEvents"


# --- what the parser needs from the inventory -------------------------------------------------------------------


class ManagedVaultView(Protocol):
    """The parts of the inventory's vault that identify it."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def resource_id(self) -> str: ...


class ManagedKeyView(Protocol):
    """The parts of the inventory's key the parser reads."""

    @property
    def name(self) -> str: ...

    @property
    def ref(self) -> KeyRef: ...

    @property
    def vault(self) -> ManagedVaultView: ...


class ManagedScope(Protocol):
    """What is managed. The inventory satisfies this structurally, so this module does not import it.

    `vault_host` is a lower-case netloc (host[:port]) such as `kv-x.vault.azure.net` or `127.0.0.1:8443`.
    `keys_under_scope` answers which managed keys an ARM role assignment at `scope` applies to (the key itself, its
    vault, resource group, subscription, or a management group / root above them).
    """

    def find_key(
        self, *, key_name: str, vault_name: str | None = None, vault_host: str | None = None
    ) -> ManagedKeyView | None: ...

    def find_vault(
        self, *, vault_name: str | None = None, vault_host: str | None = None, resource_id: str | None = None
    ) -> ManagedVaultView | None: ...

    def keys_under_scope(self, scope: str) -> Sequence[ManagedKeyView]: ...


# --- typed events -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyEvent:
    """A Key Vault event about one version of a managed key.

    `key` is the inventory's own key object (typed loosely so handlers get the inventory's full type back);
    `vault_name` is the inventory's name for the vault, which may differ from the event's when a local emulator
    serves the vault. `nbf`/`exp` are the event's view of the version; handlers re-read the vault before acting.
    """

    event_type: ClassVar[str] = ""

    event_id: str
    event_time: datetime | None
    key: Any = field(hash=False)
    key_ref: KeyRef
    version: str
    vault_name: str
    nbf: datetime | None
    exp: datetime | None
    topic: str | None
    schema: EnvelopeSchema

    @property
    def key_id(self) -> str:
        """The versioned key id this event is about."""
        return self.key_ref.version_id(self.version)


@dataclass(frozen=True)
class KeyNewVersionCreated(KeyEvent):
    event_type: ClassVar[str] = KEY_NEW_VERSION_CREATED


@dataclass(frozen=True)
class KeyNearExpiry(KeyEvent):
    event_type: ClassVar[str] = KEY_NEAR_EXPIRY


@dataclass(frozen=True)
class KeyExpired(KeyEvent):
    event_type: ClassVar[str] = KEY_EXPIRED


@dataclass(frozen=True)
class VaultAccessPolicyChanged:
    """A managed vault's access policies (or its permission model) changed: reconcile every key in it."""

    event_type: ClassVar[str] = VAULT_ACCESS_POLICY_CHANGED

    event_id: str
    event_time: datetime | None
    vault: Any = field(hash=False)
    vault_name: str
    topic: str | None
    schema: EnvelopeSchema


@dataclass(frozen=True)
class RoleAssignmentChanged:
    """An ARM role assignment was written or deleted at a scope that covers managed keys.

    The ARM event says nothing about the role or principal (only who was authorised to make the call), so handlers
    list the assignments on `scope` to learn what changed. `affected_keys` holds inventory key objects.
    """

    event_type: str  # the ARM event's own type: ResourceWriteSuccess or ResourceDeleteSuccess
    event_id: str
    event_time: datetime | None
    operation: Literal["write", "delete"]
    assignment_id: str
    scope: str
    affected_keys: tuple[Any, ...] = field(hash=False)
    topic: str | None
    schema: EnvelopeSchema


@dataclass(frozen=True)
class SubscriptionValidation:
    """Event Grid's subscription handshake; the transport answers `{"validationResponse": validation_code}`."""

    event_type: ClassVar[str] = SUBSCRIPTION_VALIDATION

    event_id: str
    event_time: datetime | None
    validation_code: str
    validation_url: str | None
    topic: str | None
    schema: EnvelopeSchema


ParsedEvent: TypeAlias = (
    KeyNewVersionCreated
    | KeyNearExpiry
    | KeyExpired
    | VaultAccessPolicyChanged
    | RoleAssignmentChanged
    | SubscriptionValidation
)


class RejectReason(StrEnum):
    MALFORMED = "malformed"  # not JSON, not an object, a required field missing or of the wrong type
    UNKNOWN_TYPE = "unknown_type"  # an event type from a namespace we never subscribe to
    NOT_OURS = "not_ours"  # secret/certificate events, other ARM operations, failures, cancellations
    OUTSIDE_INVENTORY = "outside_inventory"  # a well-formed event about a vault, key or scope we do not manage


@dataclass(frozen=True)
class Rejection:
    """Why one element of a delivery was not turned into a typed event. `event_id`/`event_type` when readable."""

    reason: RejectReason
    message: str
    event_id: str | None = None
    event_type: str | None = None


# --- public entry points ----------------------------------------------------------------------------------------


def parse_delivery(body: bytes | str | object, scope: ManagedScope) -> list[ParsedEvent | Rejection]:
    """Parse a whole webhook body: one event object or an array of them, either schema, mixed freely.

    `body` may be raw bytes, text, or an already-decoded JSON value. Never raises: a body that is not JSON becomes
    one MALFORMED rejection; an empty array gives an empty list.
    """
    try:
        value = _decode_body(body)
    except _Rejected as rejected:
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
    return [Rejection(RejectReason.MALFORMED, f"body: expected a JSON object or array, got {_kind(value)}")]


def parse_event(obj: object, scope: ManagedScope) -> ParsedEvent | Rejection:
    """Parse one event object (Event Grid or CloudEvents schema, detected from its fields). Never raises."""
    if not isinstance(obj, Mapping):
        return Rejection(RejectReason.MALFORMED, f"event: expected an object, got {_kind(obj)}")
    envelope = _Fields(obj, "")
    schema = _detect_schema(envelope)
    event_id: str | None = None
    event_type: str | None = None
    try:
        names = _ENVELOPE_NAMES[schema]
        event_type = _required_text(envelope, names.type)
        event_id = _required_text(envelope, "id")
        return _parse_typed(envelope, schema, event_id, event_type, scope)
    except _Rejected as rejected:
        return Rejection(rejected.reason, rejected.message, event_id or _peek_text(envelope, "id"), event_type)


def describe(item: ParsedEvent | Rejection) -> str:
    """One log-safe line: type, what it is about, and version or reason.

    Every value that came from the payload is escaped and capped on its own, so a hostile id can neither break the
    line nor push the reason out of it.
    """

    def v(value: object, limit: int = 100) -> str:
        return _safe(str(value), limit=limit)

    match item:
        case KeyEvent():
            return (
                f"{item.event_type} key={v(item.vault_name)}/{v(item.key_ref.name)} version={v(item.version)} "
                f"id={v(item.event_id)}"
            )
        case VaultAccessPolicyChanged():
            return f"{item.event_type} vault={v(item.vault_name)} id={v(item.event_id)}"
        case RoleAssignmentChanged():
            keys = ",".join(sorted(f"{k.ref.vault_host}/{k.ref.name}" for k in item.affected_keys))
            return (
                f"{item.event_type} role assignment {item.operation} scope={v(item.scope, 300)} keys={v(keys, 300)} "
                f"id={v(item.event_id)}"
            )
        case SubscriptionValidation():
            return f"{item.event_type} id={v(item.event_id)}"
        case Rejection():
            return (
                f"rejected {item.reason.value} type={v(item.event_type)} id={v(item.event_id)}: {v(item.message, 400)}"
            )
    return f"unexpected {type(item).__name__}"


# --- envelope ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EnvelopeNames:
    type: str
    time: str
    topic: str


_ENVELOPE_NAMES = {
    EVENT_GRID: _EnvelopeNames(type="eventType", time="eventTime", topic="topic"),
    CLOUD_EVENTS: _EnvelopeNames(type="type", time="time", topic="source"),
}

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


def _detect_schema(envelope: _Fields) -> EnvelopeSchema:
    """CloudEvents when `specversion` is present, or `type` without `eventType`; Event Grid otherwise."""
    if envelope.has("specversion"):
        return CLOUD_EVENTS
    if envelope.has("type") and not envelope.has("eventType"):
        return CLOUD_EVENTS
    return EVENT_GRID


def _parse_typed(
    envelope: _Fields, schema: EnvelopeSchema, event_id: str, raw_type: str, scope: ManagedScope
) -> ParsedEvent:
    names = _ENVELOPE_NAMES[schema]
    event_type = _HANDLED_TYPES.get(raw_type.lower())
    if event_type is None:
        if raw_type.lower().startswith(_SUBSCRIBED_NAMESPACES):
            _reject(RejectReason.NOT_OURS, f"{names.type}: {_safe(raw_type)} is not an event this app acts on")
        _reject(RejectReason.UNKNOWN_TYPE, f"{names.type}: unknown event type {_safe(raw_type)}")
    event_time = _instant(envelope.get(names.time), names.time)
    topic = _text(envelope, names.topic)
    subject = _text(envelope, "subject")
    common = _Common(event_id, event_time, topic, subject, schema)

    if event_type in _KEY_EVENT_CLASSES:
        data = _data(envelope, required=True)
        return _key_event(_KEY_EVENT_CLASSES[event_type], common, data, scope)
    if event_type == VAULT_ACCESS_POLICY_CHANGED:
        return _vault_event(common, _data(envelope, required=False), scope)
    if event_type == SUBSCRIPTION_VALIDATION:
        data = _data(envelope, required=True)
        return SubscriptionValidation(
            event_id=event_id,
            event_time=event_time,
            validation_code=_required_text(data, "validationCode"),
            validation_url=_text(data, "validationUrl"),
            topic=topic,
            schema=schema,
        )
    return _role_assignment_event(event_type, common, _data(envelope, required=True), scope)


@dataclass(frozen=True)
class _Common:
    event_id: str
    event_time: datetime | None
    topic: str | None
    subject: str | None
    schema: EnvelopeSchema


def _data(envelope: _Fields, *, required: bool) -> _Fields:
    """The `data` object. Tolerates data sent as a JSON string and CloudEvents `data_base64` holding JSON."""
    value = envelope.get("data")
    label = "data"
    if value is None and envelope.has("data_base64"):
        label = "data_base64"
        encoded = envelope.get("data_base64")
        if not isinstance(encoded, str):
            _malformed(f"data_base64: expected a base64 string, got {_kind(encoded)}")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            _malformed("data_base64: not valid base64-encoded UTF-8")
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            _malformed(f"{label}: a string that is not valid JSON")
    if value is None:
        if required:
            _malformed(f"{label}: missing")
        return _Fields({}, "data.")
    if not isinstance(value, Mapping):
        _malformed(f"{label}: expected an object, got {_kind(value)}")
    return _Fields(value, "data.")


# --- Key Vault events -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ObjectUrl:
    """A Key Vault object id such as https://kv.vault.azure.net/keys/name/version, split into its parts."""

    host: str
    segments: tuple[str, ...]


def _object_url(data: _Fields) -> _ObjectUrl | None:
    raw = _text(data, "Id")
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:
        _malformed(f"data.Id: not a URL ({_safe(raw)})")
    host = parts.netloc.rpartition("@")[2].lower()
    if parts.scheme.lower() not in ("https", "http") or not host:
        _malformed(f"data.Id: expected an https URL of a Key Vault object, got {_safe(raw)}")
    return _ObjectUrl(host=host, segments=tuple(s for s in parts.path.split("/") if s))


def _key_event(cls: type[KeyEvent], common: _Common, data: _Fields, scope: ManagedScope) -> KeyEvent:
    object_type = _text(data, "ObjectType")
    if object_type is not None and object_type.lower() != "key":
        _malformed(f"data.ObjectType: expected 'Key' for {cls.event_type}, got {_safe(object_type)}")

    url = _object_url(data)
    url_name = url_version = None
    if url is not None:
        if not url.segments or url.segments[0].lower() != "keys" or not 2 <= len(url.segments) <= 3:
            _malformed(
                "data.Id: expected https://<vault>/keys/<name>/<version>, got a URL with path "
                + _safe("/" + "/".join(url.segments))
            )
        url_name = url.segments[1]
        url_version = url.segments[2] if len(url.segments) == 3 else None

    object_name = _text(data, "ObjectName")
    if url_name and object_name and url_name.lower() != object_name.lower():
        _malformed(f"data.ObjectName: {_safe(object_name)} disagrees with the key name in data.Id ({_safe(url_name)})")
    key_name = url_name or object_name or common.subject
    if not key_name:
        _malformed("data.ObjectName: missing, and neither data.Id nor subject names the key")

    version = _text(data, "Version")
    if url_version and version and url_version.lower() != version.lower():
        _malformed(f"data.Version: {_safe(version)} disagrees with the version in data.Id ({_safe(url_version)})")
    version = url_version or version
    if not version:
        _malformed("data.Version: missing, and data.Id has no version segment")

    vault_name = _text(data, "VaultName")
    nbf = _instant(data.get("NBF"), "data.NBF")
    exp = _instant(data.get("EXP"), "data.EXP")

    # The strongest identifier present decides alone: acting on a key because a weaker field matched while a stronger
    # one named another vault could rotate the wrong key.
    if url is not None:
        managed = scope.find_key(key_name=key_name, vault_host=url.host)
        where = f"vault host {url.host}"
    elif vault_name is not None:
        managed = scope.find_key(key_name=key_name, vault_name=vault_name)
        where = f"vault {vault_name}"
    elif common.topic is not None:
        vault = scope.find_vault(resource_id=common.topic)
        managed = scope.find_key(key_name=key_name, vault_name=vault.name) if vault is not None else None
        where = f"vault {common.topic}"
    else:
        _malformed("data.Id: missing, and neither data.VaultName nor the topic names the vault")
    if managed is None:
        _reject(RejectReason.OUTSIDE_INVENTORY, f"key {_safe(key_name)} in {_safe(where)} is not managed")

    return cls(
        event_id=common.event_id,
        event_time=common.event_time,
        key=managed,
        key_ref=managed.ref,
        version=version,
        vault_name=managed.vault.name,
        nbf=nbf,
        exp=exp,
        topic=common.topic,
        schema=common.schema,
    )


def _vault_event(common: _Common, data: _Fields, scope: ManagedScope) -> VaultAccessPolicyChanged:
    url = _object_url(data)
    vault_name = _text(data, "VaultName")
    if url is not None:
        vault = scope.find_vault(vault_host=url.host)
        where = f"vault host {url.host}"
    elif vault_name is not None:
        vault = scope.find_vault(vault_name=vault_name)
        where = f"vault {vault_name}"
    elif common.topic is not None:
        vault = scope.find_vault(resource_id=common.topic)
        where = f"vault {common.topic}"
    else:
        _malformed("data.Id: missing, and neither data.VaultName nor the topic names the vault")
    if vault is None:
        _reject(RejectReason.OUTSIDE_INVENTORY, f"{_safe(where)} is not managed")
    return VaultAccessPolicyChanged(
        event_id=common.event_id,
        event_time=common.event_time,
        vault=vault,
        vault_name=vault.name,
        topic=common.topic,
        schema=common.schema,
    )


# --- ARM role assignment events ---------------------------------------------------------------------------------


def _role_assignment_event(
    event_type: str, common: _Common, data: _Fields, scope: ManagedScope
) -> RoleAssignmentChanged:
    operation_name = _required_text(data, "operationName")
    operation: Literal["write", "delete"]
    if operation_name.lower() == ROLE_ASSIGNMENT_WRITE.lower():
        operation = "write"
    elif operation_name.lower() == ROLE_ASSIGNMENT_DELETE.lower():
        operation = "delete"
    else:
        _reject(RejectReason.NOT_OURS, f"data.operationName: {_safe(operation_name)} is not a role assignment change")
    expected = RESOURCE_WRITE_SUCCESS if operation == "write" else RESOURCE_DELETE_SUCCESS
    if event_type != expected:
        _malformed(f"data.operationName: {_safe(operation_name)} does not match event type {event_type}")

    resource_uri = _text(data, "resourceUri")
    assignment_id = resource_uri or common.subject
    label = "data.resourceUri" if resource_uri else "subject"
    if not assignment_id:
        _malformed("data.resourceUri: missing, and there is no subject")
    cut = assignment_id.lower().rfind(_ROLE_ASSIGNMENTS_SEGMENT)
    name = assignment_id[cut + len(_ROLE_ASSIGNMENTS_SEGMENT) :].strip("/") if cut >= 0 else ""
    if cut < 0 or not name or "/" in name:
        _malformed(f"{label}: not a role assignment id ({_safe(assignment_id)})")
    assignment_scope = assignment_id[:cut].rstrip("/") or "/"

    affected = tuple(scope.keys_under_scope(assignment_scope))
    if not affected:
        _reject(
            RejectReason.OUTSIDE_INVENTORY, f"role assignment scope {_safe(assignment_scope)} covers no managed key"
        )
    return RoleAssignmentChanged(
        event_type=event_type,
        event_id=common.event_id,
        event_time=common.event_time,
        operation=operation,
        assignment_id=assignment_id,
        scope=assignment_scope,
        affected_keys=affected,
        topic=common.topic,
        schema=common.schema,
    )


# --- tolerant field reading -------------------------------------------------------------------------------------


class _Rejected(Exception):
    """Internal: unwinds to parse_event, which turns it into a Rejection. Never escapes this module."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _reject(reason: RejectReason, message: str) -> NoReturn:
    raise _Rejected(reason, message)


def _malformed(message: str) -> NoReturn:
    raise _Rejected(RejectReason.MALFORMED, message)


class _Fields:
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
            _malformed(f"{self._prefix}{name}: given more than once with different values (names differ only in case)")
        return self._values.get(norm)

    def label(self, name: str) -> str:
        return f"{self._prefix}{name}"


def _same_json(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except RecursionError:
        return False


def _text(fields: _Fields, name: str) -> str | None:
    """An optional string field, stripped; None when absent, null or blank. Any other JSON type is MALFORMED."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        _malformed(f"{fields.label(name)}: expected a string, got {_kind(value)}")
    return value.strip() or None


def _required_text(fields: _Fields, name: str) -> str:
    """A string field that must be present and not blank."""
    value = _text(fields, name)
    if value is None:
        raw = fields.get(name)
        _malformed(f"{fields.label(name)}: {'empty' if isinstance(raw, str) else 'missing'}")
    return value


def _peek_text(fields: _Fields, name: str) -> str | None:
    """Best-effort read for a rejection's context; never rejects."""
    try:
        value = _text(fields, name)
    except _Rejected:
        return None
    return value


def _instant(value: object, label: str) -> datetime | None:
    """A point in time from seconds since the epoch (number or numeric string) or an ISO-8601 string.

    Naive ISO times are taken as UTC (Event Grid always means UTC). Blank or null is None.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _malformed(f"{label}: expected seconds since the epoch or an ISO-8601 time, got {_kind(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            seconds: float | int = float(text)
        except ValueError:
            return _iso_instant(text, label)
    else:
        seconds = value
    try:
        if not math.isfinite(seconds):
            _malformed(f"{label}: not a finite number ({_safe(str(value))})")
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        _malformed(f"{label}: {_safe(str(value), limit=40)} seconds since the epoch is out of range")


def _iso_instant(text: str, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _malformed(f"{label}: not seconds since the epoch nor an ISO-8601 time ({_safe(text)})")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- body decoding and log safety -------------------------------------------------------------------------------


def _decode_body(body: object) -> object:
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            _malformed("body: not UTF-8 text")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except RecursionError:
            _malformed("body: JSON nested too deeply")
        except ValueError as error:
            _malformed(f"body: not valid JSON ({_safe(str(error), limit=120)})")
    return body


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _safe(text: str, *, limit: int = 160) -> str:
    """Untrusted text fit for one log line: truncated, non-printable characters escaped (no log injection)."""
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text[: limit + 1])
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."
