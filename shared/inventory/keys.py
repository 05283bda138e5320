"""The keys the inventory manages, each read in full: vault, type and size, operations, service, identity, role,
rotation and consumers, checked against the policy.

A key is kept only when every part of it is valid; the rules that span keys run as each key is read
(shared.inventory.key_rules), so a clash is reported on the later key, naming the earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from shared.arm_ids import role_definition_guid
from shared.inventory.checks import key_name_problem
from shared.inventory.consumers import read_consumers
from shared.inventory.key_rules import AcrossKeys, check_shared_consumers
from shared.inventory.model import (
    HSM_MIN_ROTATE_AFTER,
    HSM_VERSION_CAP,
    IdentityKind,
    KeyOrigin,
    ManagedKey,
    ManagedVault,
    Policy,
    Principal,
    Rotation,
)
from shared.inventory.policy import KEY_OPS, KEY_TYPES, RSA_SIZES, read_ops
from shared.inventory.principals import read_identity
from shared.inventory.problems import shown
from shared.inventory.rotation import read_rotation
from shared.inventory.section import MISSING, Section, each_mapping
from shared.inventory.vaults import read_vault_ref
from shared.model import ConsumerKind
from shared.roles.builtin import CRYPTO_SERVICE_ENCRYPTION_USER, HSM_ROLES, ROLES_BY_NAME, BuiltInRole, role_by_id

_KEY_FIELDS = (
    "vault", "name", "kty", "size", "ops", "service", "identity", "role", "rotation", "consumers", "origin",
    "import_contact",
)  # fmt: skip
_MAX_CONTACT = 200
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def read_keys(
    root: Section,
    vaults: dict[str, ManagedVault | None] | None,
    policy: Policy,
    break_glass: list[Principal],
    app_identity: str | None,
) -> list[ManagedKey]:
    """Every key, then the rules that span keys: unique names per vault, one identity per key, one key per consumer."""
    if root.data.get("keys") == []:
        root.problem("keys", "must list at least one key")
    keys: list[tuple[str, ManagedKey]] = []
    across = AcrossKeys(break_glass, app_identity)
    for path, data in each_mapping(root, "keys", required=True):
        if data is None:
            continue
        section = Section(data, path, root.problems, _KEY_FIELDS)
        name = section.text("name", check=key_name_problem)
        key = read_key(section, name, vaults, policy)
        across.check(section, name)
        if key is not None:
            keys.append((path, key))
    check_shared_consumers(root.problems, keys)
    return [key for _, key in keys]


def read_key(
    section: Section, name: str | None, vaults: dict[str, ManagedVault | None] | None, policy: Policy
) -> ManagedKey | None:
    vault = read_vault_ref(section, vaults)
    kty = section.text("kty", check=_kty_check(policy), normalize=str.upper)
    size = section.integer("size")
    if size is not None and (size not in RSA_SIZES or size < policy.min_rsa_size):
        allowed = ", ".join(str(s) for s in RSA_SIZES if s >= policy.min_rsa_size)
        section.problem("size", f"RSA size {size} is not allowed; expected one of {allowed} (policy.min_rsa_size)")
        size = None
    ops = read_ops(section, "ops", allowed=policy.allowed_ops)
    service = section.text(
        "service",
        check=lambda v: None if _SERVICE_NAME.fullmatch(v) else f"not a valid service name ({shown(v)})",
    )
    identity = read_identity(section)
    role = read_role(section, ops)
    consumers = read_consumers(section, name)
    mysql = any(c.kind == ConsumerKind.MYSQL_FLEXIBLE_SERVER for c in consumers or ())
    if mysql and identity is not None and identity.kind is not IdentityKind.USER_ASSIGNED:
        section.problem(
            "identity.kind",
            f"{identity.kind.value} cannot be the key's identity: a MySQL flexible server reaches its customer-managed "
            "key only through a user-assigned identity (dataEncryption.primaryUserAssignedIdentityId); name that "
            "identity, kind user-assigned, with its resource_id",
        )
        identity = None
    rotation = read_rotation(section, forbid_expiry=mysql)
    if vault is not None and vault.managed_hsm:
        role, rotation = _managed_hsm_rules(section, role, rotation)
    elif vault is not None and role is not None and role.managed_hsm:
        section.problem(
            "role", f"{role.name!r} is a Managed HSM role; vault {vault.name!r} is a Key Vault: name a Key Vault role"
        )
        role = None
    origin, contact, origin_ok = read_origin(section)
    parts = (name, vault, kty, size, ops, service, identity, role, rotation, consumers)
    if any(p is None for p in parts) or not origin_ok:
        return None
    rotation = replace(rotation, imported=origin is KeyOrigin.IMPORTED)  # type: ignore[arg-type]
    return ManagedKey(
        name,
        vault,
        kty,
        size,
        ops,
        service,
        identity,
        role,
        rotation,
        consumers,
        origin,
        contact,  # type: ignore[arg-type]
    )


def read_origin(section: Section) -> tuple[KeyOrigin, str | None, bool]:
    """`origin` (default generated) and, for an imported key, the person or team who imports its next version: the
    app cannot make that version itself, so an imported key without someone to ask is refused."""
    before = len(section.problems.items)
    origin = section.choice("origin", KeyOrigin, required=False, default=KeyOrigin.GENERATED)
    if len(section.problems.items) > before:
        origin = None
    contact = section.text(
        "import_contact",
        required=False,
        check=lambda v: None if len(v) <= _MAX_CONTACT else f"longer than {_MAX_CONTACT} characters",
    )
    if origin is None:
        return KeyOrigin.GENERATED, None, False
    if origin is KeyOrigin.IMPORTED and not contact:
        if section.raw("import_contact", False) is MISSING:
            section.problem(
                "import_contact",
                "required for an imported key: the app cannot make its next version and must name who imports it "
                "(an e-mail address or a team)",
            )
        return origin, None, False
    if origin is KeyOrigin.GENERATED and contact:
        section.problem("import_contact", "only an imported key (origin: imported) takes an import contact")
        return origin, None, False
    return origin, contact, True


def _managed_hsm_rules(
    section: Section, role: BuiltInRole | None, rotation: Rotation | None
) -> tuple[BuiltInRole | None, Rotation | None]:
    """A Managed HSM grants only its own local RBAC roles, and rotates automatically no more often than every 28
    days: a key on one that names a Key Vault role or rotates faster is refused here, not by the HSM later."""
    if role is not None and not role.managed_hsm:
        hsm_roles = ", ".join(sorted(r.name for r in HSM_ROLES if r.grants("wrap")))
        section.problem(
            "role",
            f"{role.name!r} is a Key Vault role; a Managed HSM key takes a Managed HSM local RBAC role by name or id "
            f"({hsm_roles})",
        )
        role = None
    if rotation is not None and rotation.rotate_after.delta < HSM_MIN_ROTATE_AFTER:
        section.problem(
            "rotation.rotate_after",
            f"{rotation.rotate_after} is below Managed HSM's minimum of 28 days between automatic rotations "
            f"(a key holds at most {HSM_VERSION_CAP} versions)",
        )
        rotation = None
    return role, rotation


def _kty_check(policy: Policy) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        kty = value.upper()
        if kty not in KEY_TYPES:
            return f"unsupported key type {shown(value)}; expected RSA-HSM or RSA"
        if kty == "RSA" and policy.require_hsm:
            return "software-protected key type RSA is not allowed while policy.require_hsm is true; use RSA-HSM"
        return None

    return check


def read_role(key: Section, ops: tuple[str, ...] | None) -> BuiltInRole | None:
    value = key.text("role")
    if value is None:
        return None
    try:
        role = role_by_id(role_definition_guid(value))
    except ValueError:  # not a GUID or role definition id: a role name
        role = ROLES_BY_NAME.get(value.lower())
    if role is None:
        known = ", ".join(sorted(r.name for r in ROLES_BY_NAME.values()))
        key.problem(
            "role",
            f"unknown role {shown(value)}; expected a Key Vault or Managed HSM built-in role by name or GUID ({known})",
        )
        return None
    if "*" in role.key_data_actions:
        key.problem(
            "role",
            f"{role.name!r} can also manage, delete and purge keys; a consumer needs only "
            f"{CRYPTO_SERVICE_ENCRYPTION_USER.name!r}",
        )
        return None
    missing = [op for op in ops or () if KEY_OPS[op] and not role.grants(KEY_OPS[op])]
    if missing:
        key.problem("role", f"{role.name!r} does not grant {', '.join(missing)}, which the key's ops need")
        return None
    return role
