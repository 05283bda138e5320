"""One vault's keys as values: a key version, a key with its versions and rotation policy, a soft-deleted key, what a
create asks for, and Key Vault's refusal (KeyVaultError). Each value round-trips through the emulator's state file.

Split from emulators.keyvault_store (the rules that change them), which re-exports every name here. Private keys
stay in these values and the state file, since this is a local stand-in; no response or log ever carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulators.rotation_policy import RotationPolicy

RSA_KEY_TYPES = ("RSA", "RSA-HSM")
RSA_KEY_SIZES = (2048, 3072, 4096)
RSA_KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")


class KeyVaultError(Exception):
    """A refusal shaped like Key Vault's: HTTP status, error code, message and optional inner code."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


@dataclass
class KeyVersion:
    version: str
    kty: str
    key_size: int
    key_ops: list[str]
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    tags: dict[str, str]
    exportable: bool
    private_pem: str = field(repr=False)
    near_expiry_sent: bool = False
    expired_sent: bool = False
    _key: Any = field(default=None, repr=False, compare=False)

    @property
    def hsm(self) -> bool:
        return self.kty.endswith("-HSM")

    def private_key(self) -> Any:
        if self._key is None:
            from cryptography.hazmat.primitives import serialization

            self._key = serialization.load_pem_private_key(self.private_pem.encode("ascii"), password=None)
        return self._key

    def public_jwk_numbers(self) -> tuple[bytes, bytes]:
        numbers = self.private_key().public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return n, e

    def to_state(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kty": self.kty,
            "key_size": self.key_size,
            "key_ops": self.key_ops,
            "enabled": self.enabled,
            "nbf": self.nbf,
            "exp": self.exp,
            "created": self.created,
            "updated": self.updated,
            "tags": self.tags,
            "exportable": self.exportable,
            "private_pem": self.private_pem,
            "near_expiry_sent": self.near_expiry_sent,
            "expired_sent": self.expired_sent,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> KeyVersion:
        return cls(**data)


@dataclass
class StoredKey:
    name: str
    versions: list[KeyVersion]  # in creation order; the last one is current
    policy: RotationPolicy | None = None

    @property
    def latest(self) -> KeyVersion:
        return self.versions[-1]

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [v.to_state() for v in self.versions],
            "policy": self.policy.to_state() if self.policy else None,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> StoredKey:
        policy = RotationPolicy.from_state(data["policy"]) if data.get("policy") else None
        return cls(data["name"], [KeyVersion.from_state(v) for v in data["versions"]], policy)


@dataclass
class DeletedKey:
    key: StoredKey
    deleted_date: int
    scheduled_purge_date: int

    def to_state(self) -> dict[str, Any]:
        return {
            "key": self.key.to_state(),
            "deleted_date": self.deleted_date,
            "scheduled_purge_date": self.scheduled_purge_date,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> DeletedKey:
        return cls(StoredKey.from_state(data["key"]), data["deleted_date"], data["scheduled_purge_date"])


@dataclass(frozen=True)
class NewKeySpec:
    """What a create request asks for, already validated by the HTTP layer."""

    kty: str = "RSA"
    key_size: int = 2048
    key_ops: tuple[str, ...] = RSA_KEY_OPS
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    exportable: bool = False
    private_pem: str | None = field(default=None, repr=False)  # an import: the material brought in, not generated
