"""Who the inventory names: the break-glass principals (allowed on every key, each with a reason) and the managed
identity each key's service uses.

A principal id is what Azure RBAC assigns to, so each is checked to be a GUID and its type read the way ARM spells it
(`ServicePrincipal`, `User`, `Group`, ...); a managed identity is always a ServicePrincipal.
"""

from __future__ import annotations

from shared.inventory.checks import arm_id_check, guid_problem
from shared.inventory.model import Identity, IdentityKind, Principal
from shared.inventory.problems import shown
from shared.inventory.section import Section, each_mapping
from shared.model import PrincipalType

USER_ASSIGNED_IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
_PRINCIPAL_FIELDS = ("principal_id", "principal_type", "reason")
_IDENTITY_FIELDS = ("principal_id", "kind", "principal_type", "resource_id")


def read_principal_type(section: Section, name: str) -> str | None:
    allowed = {t.value.lower(): t.value for t in PrincipalType}

    def check(value: str) -> str | None:
        if value.lower() in allowed:
            return None
        return f"expected one of {', '.join(allowed.values())}, got {shown(value)}"

    return section.text(
        name,
        required=False,
        default=PrincipalType.SERVICE_PRINCIPAL.value,
        check=check,
        normalize=lambda v: allowed[v.lower()],
    )


def read_break_glass(root: Section) -> list[Principal]:
    principals: list[Principal] = []
    seen: set[str] = set()
    for path, data in each_mapping(root, "break_glass", required=False):
        if data is None:
            continue
        section = Section(data, path, root.problems, _PRINCIPAL_FIELDS)
        principal_id = section.text("principal_id", check=guid_problem, normalize=str.lower)
        principal_type = read_principal_type(section, "principal_type")
        reason = section.text("reason")
        if principal_id in seen:
            section.problem("principal_id", f"break-glass principal {principal_id} is listed twice")
        elif principal_id and principal_type and reason:
            seen.add(principal_id)
            principals.append(Principal(principal_id, principal_type, reason))
    return principals


def read_identity(key: Section) -> Identity | None:
    section = key.section("identity", _IDENTITY_FIELDS)
    if section is None:
        return None
    principal_id = section.text("principal_id", check=guid_problem, normalize=str.lower)
    kind = section.choice("kind", IdentityKind)
    principal_type = read_principal_type(section, "principal_type")
    if principal_type is not None and principal_type != PrincipalType.SERVICE_PRINCIPAL.value:
        section.problem("principal_type", f"a managed identity is a ServicePrincipal, not {principal_type!r}")
        principal_type = None
    if kind is IdentityKind.USER_ASSIGNED:
        check = arm_id_check(USER_ASSIGNED_IDENTITY_TYPE)
    else:  # system-assigned: the resource that owns the identity (or kind was bad: check the form only)
        check = arm_id_check(not_type=USER_ASSIGNED_IDENTITY_TYPE if kind else None)
    resource_id = section.text("resource_id", check=check)
    if None in (principal_id, kind, principal_type, resource_id):
        return None
    return Identity(principal_id, kind, resource_id, principal_type)  # type: ignore[arg-type]
