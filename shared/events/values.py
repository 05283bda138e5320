"""What parsing an Event Grid delivery produces: one frozen value per event the app acts on, or a Rejection.

Handlers match on these types and never look at raw JSON; the event type names are the ones Azure sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeAlias

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


EnvelopeSchema: TypeAlias = Literal["EventGrid", "CloudEvents"]
EVENT_GRID: EnvelopeSchema = "EventGrid"
CLOUD_EVENTS: EnvelopeSchema = "CloudEvents"


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
    OWN_CHANGE = "own_change"  # an ARM write this app made itself (moving a consumer's key): seen, not acted on
    OUTSIDE_INVENTORY = "outside_inventory"  # a well-formed event about a vault, key or scope we do not manage


@dataclass(frozen=True)
class Rejection:
    """Why one element of a delivery was not turned into a typed event. `event_id`/`event_type` when readable."""

    reason: RejectReason
    message: str
    event_id: str | None = None
    event_type: str | None = None
