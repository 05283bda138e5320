"""The inventory's values: keys, vaults, identities, rotation, consumers, and the lookups the app makes on them.

Frozen values, built only by shared.inventory.reader (which validates everything first), so any Inventory that exists
is a valid one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.arm_ids import normalize_scope, scope_covers
from shared.errors import CmkError, NotFound
from shared.model import (
    ConsumerKind,
    KeyRef,
    LifetimeAction,
    PrincipalType,
    RotationActionType,
    RotationPolicy,
    normalize_host,
)
from shared.roles.builtin import BuiltInRole

MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"

# --------------------------------------------------------------------------------------------------------------------
# Errors


class InventoryError(CmkError):
    """The inventory cannot be used. `problems` holds every problem found, each naming file, key and field.

    Problems and message name the file by its name only: they reach HTTP bodies and logs, where a server path tells a
    caller about the host. `path` keeps the file as it was given, for a local command line that wants to show it.
    """

    code = "InvalidInventory"

    def __init__(self, problems: Iterable[str], *, path: str | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        count = len(self.problems)
        summary = f"invalid inventory ({count} problem{'s' if count != 1 else ''})"
        super().__init__(summary + "".join(f"\n  {p}" for p in self.problems))


class UnknownKey(NotFound, KeyError):
    """A key the inventory does not manage. Also a KeyError, so mapping-style callers can catch it as one."""

    code = "UnknownKey"
    __str__ = Exception.__str__  # KeyError would quote the message


# --------------------------------------------------------------------------------------------------------------------
# Values


class Mode(StrEnum):
    """enforce: remove access the inventory does not grant. audit: only report it."""

    ENFORCE = "enforce"
    AUDIT = "audit"


class KeyOrigin(StrEnum):
    """generated: Key Vault makes each version (the app rotates it). imported: each version's material comes from the
    customer's own (on-premises) HSM, so only a person can make the next one: the app asks for it (`Key.ImportDue`)
    and never lets the vault generate one."""

    GENERATED = "generated"
    IMPORTED = "imported"


class VaultKind(StrEnum):
    """Where keys live. A Managed HSM sends no events (the sweep is the only driver), grants key use through its own
    local RBAC (scopes `/`, `/keys`, `/keys/<name>`, which ARM neither lists nor reports), caps a key at 100 versions
    and rotates automatically no more often than every 28 days."""

    KEY_VAULT = "key-vault"
    MANAGED_HSM = "managed-hsm"


# A Managed HSM key holds at most this many versions (every rotation adds one).
HSM_VERSION_CAP = 100
# A Managed HSM rotates automatically no more often than this (timeAfterCreate >= P28D).
HSM_MIN_ROTATE_AFTER = timedelta(days=28)


class IdentityKind(StrEnum):
    USER_ASSIGNED = "user-assigned"
    SYSTEM_ASSIGNED = "system-assigned"


@dataclass(frozen=True)
class IsoDuration:
    """An ISO-8601 duration as written (what Key Vault's rotation policy takes) and as a timedelta (to compare).

    Calendar units count as 30 days per month and 365 per year, the way a person reads `P1Y` against `P28D`.
    """

    text: str
    delta: timedelta

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Rotation:
    """When a key gets a new version, when versions expire, and how long before expiry Key Vault warns.

    `expire_after` and `notify_before` are None for a key whose versions must never expire (one a MySQL flexible
    server consumes): it rotates on age alone. `retire_after`, when set, lets the sweep disable a superseded version
    that long after its successor appeared, once nothing depends on it (no DEK, no consumer); unset, versions are
    never retired automatically."""

    rotate_after: IsoDuration
    expire_after: IsoDuration | None
    notify_before: IsoDuration | None
    retire_after: IsoDuration | None = None
    # An imported key's versions come from the customer's HSM: its policy never carries a Rotate action, so the vault
    # cannot generate a version of it. Kept here (not only on the key) so every caller of to_policy() is safe.
    imported: bool = False

    def expiry_for(self, created: datetime) -> datetime | None:
        """When a version created at `created` should expire; None for a key that must never expire."""
        return created + self.expire_after.delta if self.expire_after is not None else None

    def to_policy(self) -> RotationPolicy:
        """The Key Vault rotation policy that carries this out (rotate after creation, notify before expiry). An
        imported key's has no Rotate action: a version the vault generated would not be the customer's material."""
        rotate: tuple[LifetimeAction, ...] = ()
        if not self.imported:
            rotate = (LifetimeAction(RotationActionType.ROTATE, time_after_create=self.rotate_after.text),)
        if self.expire_after is None:
            return RotationPolicy(expires_in=None, actions=rotate)
        notify_before = self.notify_before.text if self.notify_before else None
        return RotationPolicy(
            expires_in=self.expire_after.text,
            actions=(*rotate, LifetimeAction(RotationActionType.NOTIFY, time_before_expiry=notify_before)),
        )


@dataclass(frozen=True)
class Identity:
    """The one managed identity that uses a key. `resource_id` is the UAMI itself, or the resource that owns the
    system-assigned identity."""

    principal_id: str  # lower-case GUID
    kind: IdentityKind
    resource_id: str
    principal_type: str = PrincipalType.SERVICE_PRINCIPAL.value


@dataclass(frozen=True)
class Principal:
    """A break-glass principal: allowed to hold key-use roles on every key, always with a recorded reason."""

    principal_id: str  # lower-case GUID
    principal_type: str
    reason: str


@dataclass(frozen=True)
class Consumer:
    """Something that depends on a key: the app's own DEK table (options: `table`, and `partition_prefix`, which
    defaults to the key's name) or an Azure resource that holds a versioned key URL (`resource_id`)."""

    kind: ConsumerKind
    resource_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Policy:
    """Rules every key must meet; the defaults are the project's least-privilege baseline."""

    require_hsm: bool = True
    min_rsa_size: int = 2048
    allowed_ops: tuple[str, ...] = ("wrapKey", "unwrapKey")
    # Grants above a key (vault, resource group, subscription) reach other resources too: by default they are only
    # reported; true lets enforce mode remove those that give key use to anyone not allowed.
    remove_inherited_grants: bool = False


@dataclass(frozen=True)
class ManagedVault:
    name: str
    url: str  # no trailing slash
    resource_id: str
    subscription_id: str
    resource_group: str
    kind: VaultKind = VaultKind.KEY_VAULT

    @property
    def managed_hsm(self) -> bool:
        return self.kind is VaultKind.MANAGED_HSM

    @property
    def host(self) -> str:
        """Lower-case host[:port] as events and key ids carry it (port 443 dropped)."""
        return normalize_host(self.url)


@dataclass(frozen=True)
class ManagedKey:
    name: str
    vault: ManagedVault
    kty: str
    size: int
    ops: tuple[str, ...]
    service: str
    identity: Identity
    role: BuiltInRole
    rotation: Rotation
    consumers: tuple[Consumer, ...] = ()
    origin: KeyOrigin = KeyOrigin.GENERATED
    import_contact: str | None = None  # imported keys: who brings the next version from the on-premises HSM

    @property
    def imported(self) -> bool:
        return self.origin is KeyOrigin.IMPORTED

    @property
    def ref(self) -> KeyRef:
        return KeyRef(self.vault.url, self.name)

    @property
    def scope(self) -> str:
        """The ARM scope of this key, where its consumer's role assignment belongs."""
        return f"{self.vault.resource_id}/keys/{self.name}"

    def consumers_of(self, kind: ConsumerKind) -> tuple[Consumer, ...]:
        return tuple(c for c in self.consumers if c.kind == kind)


@dataclass(frozen=True)
class Inventory:
    mode: Mode
    app_identity: str  # lower-case GUID of the function app's own identity
    alert_topic: str | None
    policy: Policy
    break_glass: tuple[Principal, ...]
    vaults: tuple[ManagedVault, ...]
    keys: tuple[ManagedKey, ...]
    source: str = "inventory.yaml"

    @property
    def file_name(self) -> str:
        """The inventory file as messages and responses name it: no server path."""
        return file_name(self.source)

    @property
    def enforcing(self) -> bool:
        return self.mode is Mode.ENFORCE

    def key(self, name: str) -> ManagedKey:
        """The managed key called `name` (case-insensitive; `vault/name` when two vaults share a key name)."""
        vault_name, _, key_name = name.rpartition("/")
        matches = [
            k
            for k in self.keys
            if k.name.lower() == key_name.lower() and (not vault_name or k.vault.name.lower() == vault_name.lower())
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UnknownKey(f"key name '{name}' is ambiguous: it exists in several vaults; use 'vault/{key_name}'")
        raise UnknownKey(f"key '{name}' is not in the inventory ({self.file_name})")

    def find_key(
        self, *, key_name: str, vault_name: str | None = None, vault_host: str | None = None
    ) -> ManagedKey | None:
        """The managed key an event or request names, or None when it is not ours (or ambiguous without a vault)."""
        wanted = key_name.strip().lower()
        vault = vault_name.strip().lower() if vault_name and vault_name.strip() else None
        host = normalize_host(vault_host) if vault_host and vault_host.strip() else None
        matches = [
            k
            for k in self.keys
            if k.name.lower() == wanted
            and (vault is None or k.vault.name.lower() == vault)
            and (host is None or k.vault.host == host)
        ]
        return matches[0] if len(matches) == 1 else None

    def find_vault(
        self, *, vault_name: str | None = None, vault_host: str | None = None, resource_id: str | None = None
    ) -> ManagedVault | None:
        """The managed vault matching every criterion given (case-insensitive); None when none is given or none
        matches."""
        name = vault_name.strip().lower() if vault_name and vault_name.strip() else None
        host = normalize_host(vault_host) if vault_host and vault_host.strip() else None
        rid = normalize_scope(resource_id) if resource_id and resource_id.strip() else None
        if name is None and host is None and rid is None:
            return None
        for vault in self.vaults:
            if name is not None and vault.name.lower() != name:
                continue
            if host is not None and vault.host != host:
                continue
            if rid is not None and normalize_scope(vault.resource_id) != rid:
                continue
            return vault
        return None

    def keys_under_scope(self, scope: str) -> list[ManagedKey]:
        """The keys a role assignment at `scope` applies to: the key's own scope or anything above it.

        A management-group scope counts as covering every key: the inventory cannot know which subscriptions sit
        below it, and checking a key too many is harmless where missing one is not.
        """
        wanted = normalize_scope(scope)
        if not wanted or wanted.startswith(MANAGEMENT_GROUP_PREFIX):
            return list(self.keys)
        return [k for k in self.keys if scope_covers(wanted, k.scope)]

    def allowed_principals(self, key: ManagedKey | str) -> set[str]:
        """Principal ids (lower case) that may hold key-use roles on `key`: its own identity and the break-glass
        principals. The app's own identity (`app_identity`) is allowed on every key and is left out on purpose, so
        callers decide where it counts."""
        managed = self.key(key) if isinstance(key, str) else key
        return {managed.identity.principal_id, *(p.principal_id for p in self.break_glass)}

    def to_json(self) -> dict[str, Any]:
        """A public summary (no secrets exist in the inventory; ids and names only), fit for `GET /api/keys`."""
        return {
            "source": self.file_name,
            "mode": self.mode.value,
            "app_identity": self.app_identity,
            "alert_topic": self.alert_topic,
            "policy": {
                "require_hsm": self.policy.require_hsm,
                "min_rsa_size": self.policy.min_rsa_size,
                "allowed_ops": list(self.policy.allowed_ops),
            },
            "break_glass": [
                {"principal_id": p.principal_id, "principal_type": p.principal_type, "reason": p.reason}
                for p in self.break_glass
            ],
            "vaults": [
                {"name": v.name, "url": v.url, "resource_id": v.resource_id, "kind": v.kind.value} for v in self.vaults
            ],
            "keys": [
                {
                    "name": k.name,
                    "vault": k.vault.name,
                    "id": k.ref.versionless_id,
                    "scope": k.scope,
                    "kty": k.kty,
                    "size": k.size,
                    "ops": list(k.ops),
                    "service": k.service,
                    "identity": {
                        "principal_id": k.identity.principal_id,
                        "kind": k.identity.kind.value,
                        "principal_type": k.identity.principal_type,
                        "resource_id": k.identity.resource_id,
                    },
                    "role": {"id": k.role.guid, "name": k.role.name},
                    "origin": k.origin.value,
                    "import_contact": k.import_contact,
                    "rotation": {
                        "rotate_after": k.rotation.rotate_after.text,
                        "expire_after": k.rotation.expire_after.text if k.rotation.expire_after else None,
                        "notify_before": k.rotation.notify_before.text if k.rotation.notify_before else None,
                        "retire_after": k.rotation.retire_after.text if k.rotation.retire_after else None,
                    },
                    "consumers": [
                        {"kind": c.kind.value, "resource_id": c.resource_id, "options": dict(c.options)}
                        for c in k.consumers
                    ],
                }
                for k in self.keys
            ],
        }


def file_name(source: str | Path) -> str:
    """`/srv/app/inventory/reference.yaml` -> `reference.yaml`: how errors and responses name an inventory file, so
    no server path reaches an HTTP body or a log."""
    return Path(source).name or str(source)
