"""ARM resource ids as Azure compares them: the one place scopes and role-definition ids are taken apart.

ARM ids are case-insensitive and a trailing slash means nothing, so every comparison goes through these functions;
two hand-written variants of "normalise a scope" drift apart and then one side misses an inherited grant.
"""

from __future__ import annotations

import re

from shared.untrusted import describe_value

ROLE_DEFINITIONS_SEGMENT = "/providers/microsoft.authorization/roledefinitions/"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalize_scope(scope: str) -> str:
    """`/Subscriptions/X/` and `/subscriptions/x` compare equal; the root scope `/` becomes ''."""
    return scope.strip().rstrip("/").lower()


def scope_covers(parent: str, child: str) -> bool:
    """True when something assigned at `parent` applies at `child` (on path-segment boundaries, so a vault named
    `kv` does not cover a vault named `kv2`)."""
    p, c = normalize_scope(parent), normalize_scope(child)
    return p == "" or c == p or c.startswith(p + "/")


def last_segment(resource_id: str) -> str:
    """The final path segment of an ARM id or URL (an assignment's name, a key version), as written."""
    return resource_id.strip().rstrip("/").rsplit("/", 1)[-1]


def role_definition_guid(role_definition_id: str) -> str:
    """The lower-case GUID of a role definition given as a bare GUID or as a roleDefinitions resource id at any
    scope. Raises ValueError when there is no GUID where one must be."""
    guid = last_segment(role_definition_id).lower()
    if not _GUID.fullmatch(guid):
        shown = describe_value(role_definition_id, limit=120, quote=True)
        raise ValueError(f"not a role definition id or GUID ({shown})")
    return guid


def is_guid(text: str) -> bool:
    return bool(_GUID.fullmatch(text.strip().lower()))


def subscription_role_definition_id(subscription_id: str, guid: str) -> str:
    """The form ARM uses in an assignment's `roleDefinitionId`."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
