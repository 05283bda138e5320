"""Event Grid and CloudEvents deliveries -> typed events, or a rejection that says why.

Everything that reaches the Event Grid webhook is untrusted input: Key Vault events whose field names change case
between schema generations and carry stray whitespace and numbers-as-strings (see Microsoft's own samples), ARM events
for every write in a resource group, secret and certificate events from the same vault, subscription handshakes.
This is the one place that turns that into a small set of frozen values the handlers can match on, so no handler ever
looks at raw JSON. It never raises: anything it cannot use becomes a `Rejection` naming the field and what was wrong,
and the caller decides whether to log, dead-letter or ignore it.

Events are resolved against the inventory (`ManagedScope`) while parsing, so a typed event always refers to a key or
vault the project manages; everything else is rejected as OUTSIDE_INVENTORY before a handler sees it.

This module is what the rest of the app imports. The parts live in modules of one concept each: shared.events.values
(the typed events and rejections), shared.events.scope (what parsing needs from the inventory), shared.events.delivery
(bodies and dispatch by type), shared.events.envelope (schema detection and common fields), shared.events.fields
(tolerant field reading), shared.events.keyvault and shared.events.role_assignments (each source's `data`), and
shared.events.description (log lines).
"""

from shared.events.delivery import parse_delivery, parse_event
from shared.events.description import describe
from shared.events.scope import ManagedKeyView, ManagedScope, ManagedVaultView
from shared.events.values import (
    CLOUD_EVENTS,
    EVENT_GRID,
    KEY_EXPIRED,
    KEY_NEAR_EXPIRY,
    KEY_NEW_VERSION_CREATED,
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    ROLE_ASSIGNMENT_DELETE,
    ROLE_ASSIGNMENT_WRITE,
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
    RoleAssignmentChanged,
    SubscriptionValidation,
    VaultAccessPolicyChanged,
)

__all__ = [
    "CLOUD_EVENTS",
    "EVENT_GRID",
    "KEY_EXPIRED",
    "KEY_NEAR_EXPIRY",
    "KEY_NEW_VERSION_CREATED",
    "RESOURCE_DELETE_SUCCESS",
    "RESOURCE_WRITE_SUCCESS",
    "ROLE_ASSIGNMENT_DELETE",
    "ROLE_ASSIGNMENT_WRITE",
    "SUBSCRIPTION_VALIDATION",
    "VAULT_ACCESS_POLICY_CHANGED",
    "EnvelopeSchema",
    "KeyEvent",
    "KeyExpired",
    "KeyNearExpiry",
    "KeyNewVersionCreated",
    "ManagedKeyView",
    "ManagedScope",
    "ManagedVaultView",
    "ParsedEvent",
    "RejectReason",
    "Rejection",
    "RoleAssignmentChanged",
    "SubscriptionValidation",
    "VaultAccessPolicyChanged",
    "describe",
    "parse_delivery",
    "parse_event",
]
