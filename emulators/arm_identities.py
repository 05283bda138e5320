"""Managed identities as Azure has them: every identity is its own service principal.

Azure creates a managed identity's service principal itself, so no two identities ever share a principal id: a
system-assigned identity (`identity.principalId` on the resource that owns it) and a user-assigned identity
(`properties.principalId` of a `Microsoft.ManagedIdentity/userAssignedIdentities` resource) each have their own.
The emulator lets a seeder choose principal ids (so tests know them) but refuses a document that would give one
principal to two identities: a cloud where they are shared hides which identity a consumer really uses.
`identity.userAssignedIdentities[*].principalId` on a consumer only refers to a user-assigned identity, so it is
not an identity of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulators.arm_ids import same_id
from emulators.arm_resources import ArmError

USER_ASSIGNED_IDENTITIES = "microsoft.managedidentity/userassignedidentities"


def identity_principals(document: dict[str, Any]) -> dict[str, str]:
    """The identities a resource document *is* or *owns*: field path -> lower-cased principal id."""
    found: dict[str, str] = {}
    if str(document.get("type", "")).lower() == USER_ASSIGNED_IDENTITIES:
        principal = (document.get("properties") or {}).get("principalId")
        if isinstance(principal, str) and principal:
            found["properties.principalId"] = principal.lower()
    identity = document.get("identity")
    if isinstance(identity, dict):
        principal = identity.get("principalId")
        if isinstance(principal, str) and principal:
            found["identity.principalId"] = principal.lower()
    return found


def check_unique_principals(document: dict[str, Any], others: Iterable[dict[str, Any]]) -> None:
    """Refuse `document` (409, naming the field) when one of its identities has another identity's principal id."""
    mine = identity_principals(document)
    if not mine:
        return
    for other in others:
        if same_id(str(other.get("id", "")), str(document.get("id", ""))):
            continue
        theirs = set(identity_principals(other).values())
        for field, principal in mine.items():
            if principal in theirs:
                raise ArmError(
                    409,
                    "PrincipalIdAlreadyInUse",
                    f"{field}: principal id '{principal}' already belongs to the managed identity of "
                    f"'{other.get('id')}'; every managed identity has its own service principal.",
                )
