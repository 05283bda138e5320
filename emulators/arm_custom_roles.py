"""Custom role definitions as ARM validates them (`PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`).

A custom role is what makes "who can use this key" impossible to answer from a table of built-in roles: it may grant
`keys/wrap/action` + `keys/unwrap/action` under any name. ARM's rules modelled here: the GUID in the URL is the role's
id (a built-in GUID cannot be redefined), roleName is required and unique in the tenant, permissions is a list of
{actions, notActions, dataActions, notDataActions} string lists, and assignableScopes is a non-empty list of
subscription, resource group or resource scopes (never the root "/" for a custom role), all in this subscription.
"""

from __future__ import annotations

from typing import Any

from emulators.arm_ids import normalize, subscription_of
from emulators.arm_resources import ArmError, bad_request
from emulators.arm_roles import ROLES_BY_GUID, RoleDefinition

PERMISSION_FIELDS = {
    "actions": "actions",
    "notActions": "not_actions",
    "dataActions": "data_actions",
    "notDataActions": "not_data_actions",
}


def _patterns(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise bad_request(where, "expected a list of action patterns (non-empty strings)", "InvalidActionOrNotAction")
    return tuple(p.strip() for p in raw)


def parse_custom_role(
    guid: str, body: object, *, subscription_id: str, now: str, caller: str | None, previous: RoleDefinition | None
) -> RoleDefinition:
    """The custom role a PUT body describes; ArmError naming the field on anything ARM refuses."""
    if guid in ROLES_BY_GUID:
        raise ArmError(
            400, "RoleDefinitionIdIsBuiltIn", f"The role definition '{guid}' is a built-in role and cannot be changed."
        )
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        raise bad_request("properties", "required: {roleName, permissions, assignableScopes}")
    name = properties.get("roleName")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("properties.roleName", "required: a non-empty name", code="RoleDefinitionNameNullOrEmpty")
    role_type = properties.get("type") or "CustomRole"
    if str(role_type).lower() != "customrole":
        raise bad_request("properties.type", f"only CustomRole can be created ({role_type!r})")
    raw_permissions = properties.get("permissions")
    if not isinstance(raw_permissions, list) or len(raw_permissions) != 1 or not isinstance(raw_permissions[0], dict):
        raise bad_request(
            "properties.permissions",
            "expected one permission object {actions, notActions, dataActions, notDataActions}",
            code="InvalidPermissions",
        )
    permission = raw_permissions[0]
    unknown = sorted(set(permission) - set(PERMISSION_FIELDS) - {"condition", "conditionVersion"})
    if unknown:
        raise bad_request("properties.permissions[0]", f"unknown field(s) {unknown}", code="InvalidPermissions")
    patterns = {
        attr: _patterns(permission.get(key), f"properties.permissions[0].{key}")
        for key, attr in PERMISSION_FIELDS.items()
    }
    if not patterns["actions"] and not patterns["data_actions"]:
        raise bad_request(
            "properties.permissions[0]", "grant at least one action or dataAction", code="InvalidPermissions"
        )
    scopes = properties.get("assignableScopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise bad_request(
            "properties.assignableScopes", "required: a non-empty list of scopes", code="InvalidAssignableScopes"
        )
    normalized = []
    for i, scope in enumerate(scopes):
        where = f"properties.assignableScopes[{i}]"
        scope = normalize(scope)
        sub = subscription_of(scope)
        if scope == "/":
            raise bad_request(where, "a custom role cannot be assignable at the root scope", "InvalidAssignableScopes")
        if sub is None:
            raise bad_request(where, f"must start with /subscriptions/{{id}} ({scope!r})", "InvalidAssignableScopes")
        if sub.lower() != subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        normalized.append(scope)
    description = properties.get("description")
    return RoleDefinition(
        guid,
        name.strip(),
        description if isinstance(description, str) else "",
        **patterns,
        created_on=previous.created_on if previous else now,
        updated_on=now,
        role_type="CustomRole",
        assignable_scopes=tuple(normalized),
        created_by=previous.created_by if previous else caller,
        updated_by=caller,
    )


def role_to_state(role: RoleDefinition) -> dict[str, Any]:
    return {
        "guid": role.guid,
        "role_name": role.role_name,
        "description": role.description,
        "actions": list(role.actions),
        "not_actions": list(role.not_actions),
        "data_actions": list(role.data_actions),
        "not_data_actions": list(role.not_data_actions),
        "created_on": role.created_on,
        "updated_on": role.updated_on,
        "assignable_scopes": list(role.assignable_scopes),
        "created_by": role.created_by,
        "updated_by": role.updated_by,
    }


def role_from_state(data: dict[str, Any]) -> RoleDefinition:
    tuples = ("actions", "not_actions", "data_actions", "not_data_actions", "assignable_scopes")
    return RoleDefinition(**{k: tuple(v) if k in tuples else v for k, v in data.items()}, role_type="CustomRole")
