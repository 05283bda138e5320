"""The ports handlers depend on. Each has an in-memory fake (tests/fakes) and an Azure adapter (shared/azure).

Every method raises only errors from shared.errors, so handlers are written once for every backend. A contract test
suite runs each fake and its adapter (against the local emulators) through the same assertions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from shared.alertlog import AlertEntry, AlertState
from shared.audit import AuditRecord
from shared.coordination.budget import BudgetGrant
from shared.coordination.claims import Claim, ClaimResult
from shared.model import (
    Alert,
    ConsumerState,
    KeyRef,
    KeyVersion,
    Page,
    RoleAssignment,
    RotationPolicy,
    ShardKey,
    WrappedDek,
    WrapResult,
)
from shared.moves import MoveStarted, MoveStatus
from shared.revocation import Revocation
from shared.roles.definitions import RoleDefinition
from shared.vault_settings import VaultSettings

WRAP_ALGORITHM = "RSA-OAEP-256"


@runtime_checkable
class KeyVault(Protocol):
    """Key Vault keys: metadata, lifecycle and the two crypto operations the project needs."""

    def get_key(self, key: KeyRef, version: str | None = None) -> KeyVersion:
        """Latest version when `version` is None. KeyNotFound for a missing key or version."""

    def list_versions(self, key: KeyRef) -> list[KeyVersion]:
        """Every version, in no guaranteed order. KeyNotFound when the key does not exist."""

    def create_key(
        self,
        key: KeyRef,
        *,
        kty: str,
        size: int,
        ops: Iterable[str],
        expires: datetime | None = None,
        tags: dict[str, str] | None = None,
    ) -> KeyVersion:
        """Create a key, or a new version of an existing one (as Key Vault does)."""

    def rotate_key(self, key: KeyRef) -> KeyVersion:
        """New version with the same type, size and ops; the rotation policy's expiresIn sets its expiry."""

    def update_version(
        self,
        key: KeyRef,
        version: str,
        *,
        enabled: bool | None = None,
        expires: datetime | None = None,
        ops: Iterable[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> KeyVersion: ...

    def get_rotation_policy(self, key: KeyRef) -> RotationPolicy | None:
        """The key's policy. Like Key Vault, a key that never had one reports the default (Notify 30 days before
        expiry, no automatic rotation). KeyNotFound when the key does not exist."""

    def set_rotation_policy(self, key: KeyRef, policy: RotationPolicy) -> RotationPolicy: ...

    def wrap_key(self, key: KeyRef, version: str, plaintext: bytes) -> WrapResult:
        """Wrap with RSA-OAEP-256 under exactly `version`. Adapters do this locally with the public key."""

    def unwrap_key(self, key_id: str, wrapped: bytes, algorithm: str = WRAP_ALGORITHM) -> bytes:
        """Unwrap with the versioned `key_id` the DEK was wrapped under. Always a service call."""


@runtime_checkable
class AccessControl(Protocol):
    """ARM role assignments."""

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        """Assignments that apply at `scope`: at it and at every parent scope (ARM's `atScope()`)."""

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        """Idempotent for the same (scope, role, principal): returns the existing assignment."""

    def delete_assignment(self, assignment_id: str) -> bool:
        """True when something was deleted, False when it was already gone (deletes are retried)."""

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        """The definition an assignment names (full id or GUID). NotFound when ARM has none."""


@runtime_checkable
class RoleDefinitions(Protocol):
    """Role definitions by id, cached (shared.roles.catalog.RoleCatalog over AccessControl)."""

    def get(self, role_definition_id: str) -> RoleDefinition | None:
        """None when no such definition exists (an assignment naming it grants nothing)."""


@runtime_checkable
class Vaults(Protocol):
    """Key Vault resources through ARM: permission model, access policies, soft delete, purge protection."""

    def get_vault(self, resource_id: str) -> VaultSettings:
        """NotFound when the vault does not exist."""


@runtime_checkable
class ShardKeyStore(Protocol):
    """Shard keys of `hierarchy: shard-keys` keys (Table Storage, their own table): one row per shard and generation,
    ETag-guarded like the DEK registry. PreconditionFailed on a stale ETag, Conflict on an existing row."""

    def add(self, shard_key: ShardKey) -> ShardKey: ...

    def get(self, shard: str, generation: int) -> ShardKey:
        """NotFound when the shard has no such generation."""

    def replace(self, shard_key: ShardKey) -> ShardKey:
        """Replace if `shard_key.etag` still matches; PreconditionFailed otherwise."""

    def delete(self, shard_key: ShardKey) -> None:
        """Delete if `shard_key.etag` still matches (PreconditionFailed otherwise); gone already is no error."""

    def list_shard(self, shard: str) -> list[ShardKey]:
        """The shard's generations, oldest first (the last is current); empty when it has none."""

    def list_prefix(self, prefix: str) -> list[ShardKey]:
        """Every shard key of the shards `{prefix}{nnn}` (one query, at most shards x generations rows)."""


@runtime_checkable
class DekStore(Protocol):
    """The DEK registry (Table Storage). Writes are ETag-guarded; PreconditionFailed on a stale ETag."""

    def add(self, dek: WrappedDek) -> WrappedDek:
        """Insert; Conflict when (partition, dek_id) exists. Returns the entity with its ETag."""

    def get(self, partition: str, dek_id: str) -> WrappedDek: ...

    def replace(self, dek: WrappedDek) -> WrappedDek:
        """Replace if `dek.etag` still matches; PreconditionFailed otherwise."""

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page: ...

    def partitions(self) -> list[str]: ...

    def count_by_key_id(self, key: KeyRef) -> dict[str, int]:
        """How many DEKs depend on each versioned key id of `key`."""


@runtime_checkable
class WorkQueue(Protocol):
    def send(self, message: dict, *, delay_seconds: int = 0) -> None: ...


@runtime_checkable
class Consumers(Protocol):
    """Azure resources that use a key (MySQL flexible server, disk encryption set), read and updated through ARM."""

    def get_state(self, kind: str, resource_id: str) -> ConsumerState:
        """NotFound for a resource that does not exist."""

    def start_move(self, kind: str, resource_id: str, key_url: str) -> MoveStarted:
        """Send the PATCH that points the resource at the versioned `key_url` and return at once (an ARM long-running
        operation: never waited on). OperationInProgress when ARM refuses it because another operation on the
        resource is running (409). InvalidInput naming `key_url` for a versionless or foreign URL."""

    def move_status(self, kind: str, resource_id: str, operation_url: str | None) -> MoveStatus:
        """One read of a started move's status. With no `operation_url` (ARM finished the PATCH at once) it is
        Succeeded: the caller verifies the resource's state either way. InvalidInput naming `operation_url` for a
        URL that is not ARM's."""


@runtime_checkable
class RewrapBudget(Protocol):
    """One budget of Key Vault operations per vault and time window, shared by every re-wrap worker of every
    instance (Table Storage), so that together they stay within their share of the vault's limit."""

    def reserve(self, scope: str, want: int, *, now: datetime, limit_per_window: int, window: timedelta) -> BudgetGrant:
        """Take up to `want` operations from `scope`'s current window (ETag-guarded, so concurrent reservers never
        over-spend it). A grant of 0 carries `retry_after` seconds: when the next window opens."""


@runtime_checkable
class Alerts(Protocol):
    def publish(self, alert: Alert) -> None:
        """Send as a CloudEvent; ServiceUnavailable when it could not be delivered, so the trigger is retried."""


@runtime_checkable
class AlertLog(Protocol):
    """The alerts the app queued, with their delivery state (Table Storage), read newest first."""

    def add(self, entry: AlertEntry) -> AlertEntry:
        """Insert; when an entry with this id is already there (a retried queueing), it is kept and returned."""

    def put(self, entry: AlertEntry) -> AlertEntry:
        """Insert or replace (a delivery attempt's outcome)."""

    def get(self, alert_id: str) -> AlertEntry | None:
        """None for an id never logged. InvalidInput naming `id` for one no alert could have."""

    def recent(self, *, limit: int = 50, state: AlertState | None = None) -> list[AlertEntry]:
        """The newest `limit` entries (1-1000), only those in `state` when given, newest first."""


@runtime_checkable
class Claims(Protocol):
    """Exactly-once claims (Table Storage). See shared.coordination.claims for why they are keyed on state."""

    def claim(self, claim_id: str, owner: str, *, now: datetime, ttl: timedelta) -> ClaimResult:
        """Insert an in-progress claim that fails on conflict; take over an existing in-progress one whose
        `expires_at` <= now (ETag-guarded: of two takers only one wins). The same owner asking again is a retry of
        an insert whose reply was lost: it still holds the claim. Otherwise return the existing claim."""

    def complete(self, claim: Claim, outcome: dict) -> Claim:
        """Mark `claim` (as returned when taken) completed with `outcome`. PreconditionFailed when somebody else
        took it over meanwhile (the holder's act may then have been repeated: decide from state)."""

    def release(self, claim: Claim) -> None:
        """Delete `claim` if it is still ours (after a failure, so the next trigger retries at once)."""

    def get(self, claim_id: str) -> Claim | None: ...


@runtime_checkable
class AuditTrail(Protocol):
    """Append-only records of what the app did (Table Storage), read newest first."""

    def append(self, record: AuditRecord) -> AuditRecord: ...

    def page(
        self,
        *,
        key: str | None = None,
        since: datetime | None = None,
        continuation: str | None = None,
        page_size: int = 50,
        action: str | None = None,
        outcome: str | None = None,
    ) -> Page:
        """Records (AuditRecord) newest first, at or after `since`, only `key`'s, `action`'s and `outcome`'s when
        given (filtered by the store, so a rare action is found past any number of others); `continuation` from
        the previous page's. InvalidInput naming `continuation` for a token this store did not issue."""


@runtime_checkable
class Revocations(Protocol):
    """The revocation ledger (Table Storage): what an operator revoked on purpose, with its plan and state. Each
    subject (a principal on a key, or a key) has at most one active revocation; reconciliation never grants an
    actively revoked principal back, and rotation never renews a shredded key."""

    def revoked(self, key: str) -> set[str]:
        """Lower-case principal ids under an active revoke-access of the inventory key `key`."""

    def shredded(self, key: str) -> str | None:
        """The id of `key`'s active disable-key revocation, None when there is none."""

    def open(self, revocation: Revocation) -> tuple[Revocation, bool]:
        """Record `revocation` and make it its subject's active one: `(it, True)`. When the subject already has an
        active revocation, nothing is written: `(that one, False)`."""

    def get(self, revocation_id: str) -> Revocation:
        """NotFound for an id the ledger never recorded."""

    def update(self, revocation: Revocation) -> Revocation:
        """Replace if `revocation.etag` still matches (PreconditionFailed otherwise); returns it with its new ETag."""

    def close(self, revocation: Revocation) -> None:
        """Its subject is no longer actively revoked (a restoration), if this is still the subject's active one."""

    def active(self) -> list[Revocation]:
        """Every active revocation."""


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
