"""The Key Vault vaults the inventory manages: each placed by its ARM resource id (or subscription and resource
group), reached at its URL, and referred to by name from its keys.

A vault's URL decides which events and key ids are about it, so two vaults may not share a host; the resource id
decides which role assignments cover its keys, so its parts must agree with the fields given beside it.
"""

from __future__ import annotations

from shared.inventory.checks import (
    ArmId,
    arm_id_check,
    guid_problem,
    parse_arm_id,
    resource_group_problem,
    vault_name_problem,
    vault_url_problem,
)
from shared.inventory.model import ManagedVault, VaultKind
from shared.inventory.problems import shown
from shared.inventory.section import MISSING, Section, each_mapping

VAULT_RESOURCE_TYPE = "Microsoft.KeyVault/vaults"
HSM_RESOURCE_TYPE = "Microsoft.KeyVault/managedHSMs"
_RESOURCE_TYPES = {VaultKind.KEY_VAULT: VAULT_RESOURCE_TYPE, VaultKind.MANAGED_HSM: HSM_RESOURCE_TYPE}
_DEFAULT_HOSTS = {VaultKind.KEY_VAULT: "vault.azure.net", VaultKind.MANAGED_HSM: "managedhsm.azure.net"}
_VAULT_FIELDS = ("name", "kind", "url", "resource_id", "subscription_id", "resource_group")


def read_vaults(root: Section) -> dict[str, ManagedVault | None] | None:
    """Vaults by lower-case name; a declared but invalid vault maps to None (reported already), so keys that refer
    to it are not reported a second time. None when the list itself is missing or unusable."""
    if root.data.get("vaults") == []:
        root.problem("vaults", "must list at least one vault")
    entries = each_mapping(root, "vaults", required=True)
    if not entries:
        return None
    vaults: dict[str, ManagedVault | None] = {}
    hosts: dict[str, str] = {}
    for path, data in entries:
        if data is None:
            continue
        section = Section(data, path, root.problems, _VAULT_FIELDS)
        name = section.text("name", check=vault_name_problem)
        if name and name.lower() in vaults:
            section.problem("name", f"vault {name!r} is listed twice")
            continue
        vault = read_vault(section, name)
        if name:
            vaults[name.lower()] = vault
        if vault is not None:
            if vault.host in hosts:
                section.problem("url", f"vault host {vault.host} is also used by vault {hosts[vault.host]!r}")
            hosts[vault.host] = vault.name
    return vaults


def _kind_problem(value: str) -> str | None:
    if value.lower() in {k.value for k in VaultKind}:
        return None
    return f"unknown vault kind {shown(value)}; expected one of {', '.join(k.value for k in VaultKind)}"


def read_vault(section: Section, name: str | None) -> ManagedVault | None:
    """A vault is placed by resource_id, or by subscription_id + resource_group (its resource_id is built). `kind`
    (key-vault unless given) decides the resource type its id must have and its default URL."""
    kind_text = section.text("kind", required=False, default=VaultKind.KEY_VAULT.value, check=_kind_problem)
    if kind_text is None:
        return None
    kind = VaultKind(kind_text.lower())
    resource_type = _RESOURCE_TYPES[kind]
    has_url = section.raw("url", required=False) is not MISSING
    has_id = section.raw("resource_id", required=False) is not MISSING
    url = section.text("url", required=False, check=vault_url_problem)
    resource_id = section.text("resource_id", required=False, check=arm_id_check(resource_type))
    subscription = section.text("subscription_id", required=False, check=guid_problem, normalize=str.lower)
    group = section.text("resource_group", required=False, check=resource_group_problem)
    if not has_id:
        for field_name in ("subscription_id", "resource_group"):
            if section.raw(field_name, required=False) is MISSING:
                section.problem(field_name, "required field is missing (or give the vault's resource_id)")
    if name is None or (has_url and url is None):
        return None
    if not has_id:
        if subscription is None or group is None:
            return None
        resource_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{resource_type}/{name}"
    elif resource_id is None:
        return None
    else:
        parsed = parse_arm_id(resource_id)
        assert isinstance(parsed, ArmId)  # checked above
        ok = True
        if parsed.name.lower() != name.lower():
            section.problem("resource_id", f"names vault {parsed.name!r}, not {name!r}")
            ok = False
        if subscription and subscription != parsed.subscription_id:
            section.problem("subscription_id", f"{subscription} differs from the subscription in resource_id")
            ok = False
        if group and group.lower() != parsed.resource_group.lower():
            section.problem("resource_group", f"{group!r} differs from the resource group in resource_id")
            ok = False
        if not ok:
            return None
        subscription, group = parsed.subscription_id, parsed.resource_group
    url = (url or f"https://{name}.{_DEFAULT_HOSTS[kind]}").rstrip("/")
    return ManagedVault(name, url, resource_id, subscription, group, kind)


def read_vault_ref(section: Section, vaults: dict[str, ManagedVault | None] | None) -> ManagedVault | None:
    name = section.text("vault")
    if name is None or vaults is None:
        return None
    if name.lower() not in vaults:
        known = ", ".join(repr(v.name) for v in vaults.values() if v) or "none"
        section.problem("vault", f"unknown vault {shown(name)} (vaults: {known})")
        return None
    return vaults[name.lower()]  # None when that vault entry was invalid (reported there)
