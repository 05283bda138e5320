"""What a Managed HSM key needs beyond a vault key's checks: nobody unexpected able to manage roles at `/`, and
room left under the 100-version cap.

On a Managed HSM, Administrator, Crypto Officer and Policy Administrator use no key material, so the access judgement
(which polices key use) never sees them; yet each can write role assignments, so whoever holds one at `/` can give
anyone any key use. The app itself needs one of them to reconcile; a break-glass principal may hold one (reported as
info); anyone else is a finding. Purge protection is the vault check (the HSM's ARM resource carries it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from shared.arm_ids import normalize_scope
from shared.errors import CmkError
from shared.findings import FindingCode
from shared.inventory import HSM_VERSION_CAP
from shared.model import RoleAssignment
from shared.ports import KeyVault
from shared.roles import HSM_ROLE_MANAGERS, HSM_ROLES

AddFinding = Callable[..., None]
NEAR_CAP = 90
_NAMES = {r.guid: r.name for r in HSM_ROLES}


def review_role_managers(managed: Any, inventory: Any, assignments: Iterable[RoleAssignment], add: AddFinding) -> None:
    """Role managers at the HSM's root scope (listed at the key's scope, which shows `/` too)."""
    root = normalize_scope(managed.vault.resource_id)
    break_glass = {p.principal_id for p in inventory.break_glass}
    for a in assignments:
        if normalize_scope(a.scope) != root or a.role_guid not in HSM_ROLE_MANAGERS:
            continue
        principal = a.principal_id.lower()
        if principal == inventory.app_identity:
            continue
        detail = {"principal_id": principal, "role": _NAMES[a.role_guid], "scope": "/", "assignment_id": a.id}
        if principal in break_glass:
            add(
                FindingCode.BREAK_GLASS_HSM_ROLE_MANAGER,
                f"break-glass principal {principal} holds {_NAMES[a.role_guid]} at / of {managed.vault.name}",
                **detail,
            )
        else:
            add(
                FindingCode.HSM_ROLE_MANAGER,
                f"{principal} holds {_NAMES[a.role_guid]} at / of Managed HSM {managed.vault.name}: it can grant "
                "anyone any key use; name it a break-glass principal if that is intended",
                **detail,
            )


def review_version_cap(managed: Any, vault: KeyVault, add: AddFinding) -> None:
    try:
        count = len(vault.list_versions(managed.ref))
    except CmkError:
        return  # unreadable: the key's own findings say so
    if count >= HSM_VERSION_CAP:
        add(
            FindingCode.HSM_VERSION_CAP_REACHED,
            f"key {managed.name} holds {count} versions, Managed HSM's maximum: the next rotation will be refused",
            versions=count,
        )
    elif count >= NEAR_CAP:
        add(
            FindingCode.HSM_VERSIONS_NEAR_CAP,
            f"key {managed.name} holds {count} of {HSM_VERSION_CAP} versions: {HSM_VERSION_CAP - count} rotations left",
            versions=count,
        )
