"""Which handler answers which event type: the one list the Event Grid triggers dispatch through.

Each capability adds its lines here when it lands (rotation: KeyNearExpiry, KeyExpired, KeyNewVersionCreated; least
privilege: RoleAssignmentChanged, VaultAccessPolicyChanged), e.g. `KeyNearExpiry: rotation.on_near_expiry`. One
explicit list rather than decorators spread over handler modules: whether a handler is registered never depends on
whether its module happened to be imported first, and this module imports exactly the handlers the app serves.
An event type without a line is logged as ignored, with its type and key.
"""

from __future__ import annotations

from functions import access, rewrap, rotation
from functions.registry import HandlerRegistry
from shared.events import (
    KeyExpired,
    KeyNearExpiry,
    KeyNewVersionCreated,
    RoleAssignmentChanged,
    VaultAccessPolicyChanged,
)

EVENT_HANDLERS = HandlerRegistry(
    {
        KeyNearExpiry: rotation.on_near_expiry,
        KeyExpired: rotation.on_expired,
        KeyNewVersionCreated: rewrap.on_new_version,
        RoleAssignmentChanged: access.on_role_assignment_changed,
        VaultAccessPolicyChanged: access.on_vault_access_policy_changed,
    }
)
