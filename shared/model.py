"""Value types shared by handlers, ports, fakes and adapters.

Plain frozen dataclasses: they cross every boundary (handler <-> port <-> adapter), so they must be cheap to build,
compare by value and carry no SDK types. Nothing here may hold key material except `WrappedDek.wrapped`, which is
ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from shared.arm_ids import last_segment

# Private-link DNS aliases of a vault's host, per cloud: `<vault>.privatelink.vaultcore.azure.net` is the same vault
# as `<vault>.vault.azure.net` (Azure's private DNS zone CNAMEs one to the other).
PRIVATE_LINK_ALIASES = (
    (".privatelink.vaultcore.azure.net", ".vault.azure.net"),
    (".privatelink.vaultcore.azure.cn", ".vault.azure.cn"),
    (".privatelink.vaultcore.usgovcloudapi.net", ".vault.usgovcloudapi.net"),
)


def normalize_host(host_or_url: str) -> str:
    """`HTTPS://KV.vault.azure.net:443/`, `kv.privatelink.vaultcore.azure.net` and `kv.vault.azure.net` all become
    `kv.vault.azure.net`: lower case, the default https port dropped, a private-link alias mapped to the vault."""
    text = host_or_url.strip()
    netloc = urlsplit(text).netloc if "://" in text else text.split("/", 1)[0]
    netloc = netloc.lower().removesuffix(":443").rstrip(".")
    for alias, host in PRIVATE_LINK_ALIASES:
        if netloc.endswith(alias):
            return netloc.removesuffix(alias) + host
    return netloc


def normalize_key_id(key_id: str) -> str:
    """One form for every spelling of a Key Vault key id (versioned or not), so ids compare as strings (M6).

    A key version is (vault, key name, version): the URL's scheme, host and path are lower-cased (Key Vault names are
    case-insensitive, versions are lower-case hex), the host normalised as `normalize_host`, and a trailing slash
    dropped. `https://KV.vault.azure.net:443/keys/K/V1/` -> `https://kv.vault.azure.net/keys/k/v1`.
    """
    text = key_id.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    return f"{parts.scheme.lower()}://{normalize_host(parts.netloc)}{parts.path.rstrip('/').lower()}"


def same_key_id(a: str | None, b: str | None) -> bool:
    """Whether two key ids name the same key (or key version), however each was spelled; None matches nothing."""
    return a is not None and b is not None and normalize_key_id(a) == normalize_key_id(b)


@dataclass(frozen=True)
class KeyRef:
    """A key by vault URL and name; the versionless identity a consumer that follows the latest would use."""

    vault_url: str
    name: str

    @property
    def versionless_id(self) -> str:
        return f"{self.vault_url.rstrip('/')}/keys/{self.name}"

    def version_id(self, version: str) -> str:
        return f"{self.versionless_id}/{version}"

    @property
    def vault_host(self) -> str:
        return normalize_host(self.vault_url)

    @property
    def normalized_id(self) -> str:
        """The versionless id in the one form key ids are compared in (`normalize_key_id`)."""
        return normalize_key_id(self.versionless_id)


@dataclass(frozen=True)
class KeyVersion:
    """One version of a key as Key Vault reports it (public attributes only)."""

    ref: KeyRef
    version: str
    kty: str
    size: int | None
    ops: tuple[str, ...]
    enabled: bool
    created: datetime | None = None
    updated: datetime | None = None
    not_before: datetime | None = None
    expires: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # SHA-256 (hex) of the public key as DER SubjectPublicKeyInfo, when the service showed it: what tells a version
    # imported from an on-premises HSM from one the vault generated (functions.compliance.key_review).
    public_sha256: str | None = field(default=None, compare=False, hash=False)

    @property
    def key_id(self) -> str:
        return self.ref.version_id(self.version)


class RotationActionType(StrEnum):
    ROTATE = "Rotate"
    NOTIFY = "Notify"


@dataclass(frozen=True)
class LifetimeAction:
    """One rotation-policy action; exactly one of the two triggers is set (ISO-8601 durations, e.g. 'P90D')."""

    action: RotationActionType
    time_after_create: str | None = None
    time_before_expiry: str | None = None


@dataclass(frozen=True)
class RotationPolicy:
    expires_in: str | None
    actions: tuple[LifetimeAction, ...] = ()


@dataclass(frozen=True)
class WrapResult:
    """Ciphertext of a DEK wrapped under one exact key version."""

    key_id: str
    algorithm: str
    wrapped: bytes


class PrincipalType(StrEnum):
    SERVICE_PRINCIPAL = "ServicePrincipal"
    USER = "User"
    GROUP = "Group"
    FOREIGN_GROUP = "ForeignGroup"
    DEVICE = "Device"


@dataclass(frozen=True)
class RoleAssignment:
    """An ARM role assignment. `scope` is the ARM id it is attached to; it applies to everything below it."""

    id: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str = PrincipalType.SERVICE_PRINCIPAL.value
    # ARM's `createdOn`: Key Vault applies a new grant up to RBAC's propagation time after it, so a broader grant
    # may go only once the minimal one is that old. None when not known (then it is never old enough).
    created_on: datetime | None = field(default=None, compare=False)

    @property
    def role_guid(self) -> str:
        return last_segment(self.role_definition_id).lower()

    @property
    def name(self) -> str:
        return last_segment(self.id)


@dataclass(frozen=True)
class WrappedDek:
    """A data encryption key as stored in the registry: ciphertext only, plus what proves a correct unwrap.

    `kcv` is a key check value (a truncated HMAC of the plaintext under a fixed label), so an unwrap that returns the
    wrong bytes is caught before a re-wrap overwrites the only good copy. `etag` is set by the store.
    """

    partition: str
    dek_id: str
    key_id: str  # versioned KEK id
    algorithm: str
    wrapped: bytes
    kcv: str
    previous_key_id: str | None = None
    previous_wrapped: bytes | None = None
    etag: str | None = None

    @property
    def key_version(self) -> str:
        return last_segment(self.key_id)


@dataclass(frozen=True)
class ShardKey:
    """One generation of one shard's key as stored: ciphertext only, with the KEK version it is wrapped under.

    `migrated` marks the shard's current generation once every DEK of the shard is under a shard key (the flat
    re-wrap may then skip paging the shard); `kek_id` is the versioned KEK id (normalised on read)."""

    shard: str
    generation: int
    kek_id: str
    algorithm: str
    wrapped: bytes
    kcv: str
    created: datetime | None = None
    migrated: bool = False
    etag: str | None = None
    # When the KEK version it is wrapped under was created (set when wrapped; None on rows older than the field): a
    # late re-wrap message compares it with its target's, so a shard key never moves back to an older KEK version.
    kek_created: datetime | None = None

    @property
    def kek_version(self) -> str:
        return last_segment(self.kek_id)

    def __repr__(self) -> str:  # the wrapped bytes are not secret, but they are noise in a log line
        return f"ShardKey(shard={self.shard!r}, generation={self.generation}, kek_id={self.kek_id!r})"


@dataclass(frozen=True)
class Page:
    items: tuple
    continuation: str | None


class ConsumerKind(StrEnum):
    DEK_TABLE = "dek-table"
    MYSQL_FLEXIBLE_SERVER = "mysql-flexible-server"
    DISK_ENCRYPTION_SET = "disk-encryption-set"


@dataclass(frozen=True)
class ConsumerState:
    """Which key version a consumer (an Azure resource) uses right now, as read back from ARM, and whether it can.

    `key_url` is the versioned key the resource uses for its data (MySQL `primaryKeyURI`, DES `activeKey.keyUrl`);
    `other_key_urls` are the other versions it still depends on (MySQL's geo-backup key, a DES's `previousKeys`), which
    no retirement may touch either. `available` is False when the resource reports it cannot reach its key (MySQL
    `state: Inaccessible`), with the service's own words in `error`.

    `identities` are the principal ids (lower case) the resource really reaches the key with, as ARM reports them
    (MySQL's primary and geo-backup user-assigned identities, a DES's identity): these, not what the inventory says,
    lose access when a grant goes, so reconcile protects them and compliance compares them with the inventory.
    `unresolved_identities` names identity resource ids whose principal id could not be read.
    `attached_identities` are the principal ids of every identity attached to the resource that it could switch its
    encryption to without anything else changing (a MySQL server's user-assigned identities): an operator moving the
    server to another identity grants it first, then moves, so reconcile leaves their key use alone too.
    """

    kind: ConsumerKind
    resource_id: str
    key_url: str | None
    follows_latest: bool = False
    available: bool = True
    error: str | None = None
    other_key_urls: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()
    unresolved_identities: tuple[str, ...] = ()
    attached_identities: tuple[str, ...] = ()

    @property
    def key_urls_in_use(self) -> tuple[str, ...]:
        return tuple(u for u in (self.key_url, *self.other_key_urls) if u)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Alert:
    """What goes out as a CloudEvent. `data` must never contain key material."""

    type: str
    subject: str
    severity: Severity
    message: str
    data: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Finding:
    """One difference between the desired state (inventory) and what the cloud reports."""

    code: str
    severity: Severity
    key: str
    message: str
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "key": self.key,
            "message": self.message,
            "detail": dict(self.detail),
        }
