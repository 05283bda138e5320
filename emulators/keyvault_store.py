"""One vault's keys as Key Vault keeps them: versions, soft-deleted keys, rotation policies, and the RSA operations.

Plain state and rules, no HTTP: the HTTP layer (emulators.keyvault) parses requests, checks the caller, and turns
KeyVaultError into Key Vault's error body. The values kept here (versions, keys, deleted keys) are
emulators.keyvault_keys. Times are unix seconds from the movable clock. Private keys stay in these two modules (and
in the emulator's state file, since it is a local stand-in); no response or log ever carries them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from emulators.core import EventSink, MovableClock
from emulators.keyvault_keys import (
    RSA_KEY_OPS,
    RSA_KEY_SIZES,
    RSA_KEY_TYPES,
    DeletedKey,
    KeyVaultError,
    KeyVersion,
    NewKeySpec,
    StoredKey,
    bad_parameter,
)
from emulators.rotation_policy import RotationPolicy, default_policy

# The values moved to emulators.keyvault_keys; other modules and tests import them from here.
__all__ = [
    "RECOVERABLE_DAYS",
    "RSA_KEY_OPS",
    "RSA_KEY_SIZES",
    "RSA_KEY_TYPES",
    "WRAP_ALGORITHMS",
    "DeletedKey",
    "KeyVaultError",
    "KeyVersion",
    "NewKeySpec",
    "StoredKey",
    "VaultStore",
    "bad_parameter",
]

WRAP_ALGORITHMS = ("RSA-OAEP-256", "RSA-OAEP", "RSA1_5")
RECOVERABLE_DAYS = 90
EVENT_PREFIX = "Microsoft.KeyVault."


def _padding(algorithm: str) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if algorithm == "RSA-OAEP-256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    if algorithm == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if algorithm == "RSA1_5":
        return padding.PKCS1v15()
    raise bad_parameter(f"Invalid algorithm '{algorithm}': expected one of {', '.join(WRAP_ALGORITHMS)}")


def _generate_pem(key_size: int) -> tuple[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return pem, key


class VaultStore:
    """The keys of one vault. Runs on the emulator's event loop; every mutation calls `on_change` (persistence)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        resource_id: str,
        clock: MovableClock,
        events: EventSink,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.resource_id = resource_id
        self.clock = clock
        self.events = events
        self.on_change = on_change
        self.keys: dict[str, StoredKey] = {}
        self.deleted: dict[str, DeletedKey] = {}

    # ---- ids and events -------------------------------------------------------------------------------------
    def key_id(self, name: str, version: str | None = None) -> str:
        return f"{self.url}/keys/{name}/{version}" if version else f"{self.url}/keys/{name}"

    def now(self) -> int:
        return int(self.clock.timestamp())

    def emit(self, event: str, key: StoredKey, version: KeyVersion) -> None:
        self.events.emit(
            topic=self.resource_id,
            event_type=EVENT_PREFIX + event,
            subject=key.name,
            data={
                "Id": self.key_id(key.name, version.version),
                "VaultName": self.name,
                "ObjectType": "Key",
                "ObjectName": key.name,
                "Version": version.version,
                "NBF": version.nbf,
                "EXP": version.exp,
            },
        )

    # ---- lookups --------------------------------------------------------------------------------------------
    def get(self, name: str) -> StoredKey:
        key = self.keys.get(name.lower())
        if key is None:
            raise KeyVaultError(404, "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault.")
        return key

    def get_version(self, name: str, version: str | None) -> tuple[StoredKey, KeyVersion]:
        key = self.get(name)
        if not version:
            return key, key.latest
        for candidate in key.versions:
            if candidate.version == version.lower():
                return key, candidate
        raise KeyVaultError(
            404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault."
        )

    def list_keys(self) -> list[StoredKey]:
        return [self.keys[k] for k in sorted(self.keys)]

    def key_class(self, name: str | None) -> tuple[bool, int]:
        """(HSM?, key size) of a key's current version, for throttling; a software 2048 key when unknown."""
        key = self.keys.get(name.lower()) if name else None
        return (key.latest.hsm, key.latest.key_size) if key else (False, 2048)

    # ---- creating versions ----------------------------------------------------------------------------------
    async def create_key(self, name: str, spec: NewKeySpec) -> tuple[StoredKey, KeyVersion]:
        if name.lower() in self.deleted:
            raise KeyVaultError(
                409,
                "Conflict",
                f"Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the key can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        if spec.private_pem is not None:  # an import: the caller's material, already checked by the HTTP layer
            pem, private = spec.private_pem, None
        else:
            pem, private = await asyncio.to_thread(_generate_pem, spec.key_size)
        now = self.now()
        version = KeyVersion(
            version=uuid.uuid4().hex,
            kty=spec.kty,
            key_size=spec.key_size,
            key_ops=list(spec.key_ops),
            enabled=spec.enabled,
            nbf=spec.nbf,
            exp=spec.exp,
            created=now,
            updated=now,
            tags=dict(spec.tags),
            exportable=spec.exportable,
            private_pem=pem,
            _key=private,
        )
        if name.lower() in self.deleted:  # deleted while the key was being generated
            raise KeyVaultError(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state.")
        key = self.keys.get(name.lower())
        if key is None:
            key = self.keys[name.lower()] = StoredKey(name, [version])
        else:
            key.versions.append(version)
        self.on_change()
        self.emit("KeyNewVersionCreated", key, version)
        return key, version

    async def rotate(self, name: str) -> tuple[StoredKey, KeyVersion]:
        """A new version like the current one; the rotation policy's expiryTime sets its expiry."""
        current = self.get(name).latest
        policy = self.get(name).policy
        expiry = policy.expiry_seconds() if policy else None
        spec = NewKeySpec(
            kty=current.kty,
            key_size=current.key_size,
            key_ops=tuple(current.key_ops),
            exp=int(self.clock.timestamp() + expiry) if expiry else None,
            tags=dict(current.tags),
            exportable=current.exportable,
        )
        return await self.create_key(self.get(name).name, spec)

    # ---- properties and policy ------------------------------------------------------------------------------
    def update(
        self,
        name: str,
        version: str | None,
        *,
        enabled: bool | None = None,
        nbf: int | type[Ellipsis] | None = ...,
        exp: int | type[Ellipsis] | None = ...,
        key_ops: list[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> tuple[StoredKey, KeyVersion]:
        key, target = self.get_version(name, version)
        if enabled is not None:
            target.enabled = enabled
        if nbf is not ...:
            target.nbf = nbf  # type: ignore[assignment]
        if exp is not ...:
            if exp != target.exp:
                target.near_expiry_sent = False
                target.expired_sent = False
            target.exp = exp  # type: ignore[assignment]
        if key_ops is not None:
            target.key_ops = list(key_ops)
        if tags is not None:
            target.tags = dict(tags)
        target.updated = self.now()
        self.on_change()
        return key, target

    def get_policy(self, name: str) -> RotationPolicy:
        key = self.get(name)
        return key.policy or default_policy()

    def set_policy(self, name: str, policy: RotationPolicy) -> RotationPolicy:
        key = self.get(name)
        now = self.now()
        policy.created = key.policy.created if key.policy and key.policy.created else now
        policy.updated = now
        key.policy = policy
        self.on_change()
        return policy

    # ---- soft delete ----------------------------------------------------------------------------------------
    def delete(self, name: str, *, retention_days: int = RECOVERABLE_DAYS) -> DeletedKey:
        """Soft delete; the purge date follows the vault's retention (`softDeleteRetentionInDays`)."""
        key = self.get(name)
        now = self.now()
        deleted = DeletedKey(key, now, now + retention_days * 86400)
        del self.keys[name.lower()]
        self.deleted[name.lower()] = deleted
        self.on_change()
        return deleted

    def get_deleted(self, name: str) -> DeletedKey:
        deleted = self.deleted.get(name.lower())
        if deleted is None:
            raise KeyVaultError(404, "KeyNotFound", f"Deleted Key not found: {name}")
        return deleted

    def list_deleted(self) -> list[DeletedKey]:
        return [self.deleted[k] for k in sorted(self.deleted)]

    def recover(self, name: str) -> StoredKey:
        deleted = self.get_deleted(name)
        del self.deleted[name.lower()]
        self.keys[name.lower()] = deleted.key
        self.on_change()
        return deleted.key

    def purge(self, name: str) -> None:
        self.get_deleted(name)
        del self.deleted[name.lower()]
        self.on_change()

    # ---- cryptography ---------------------------------------------------------------------------------------
    def _check_op(self, name: str, version: KeyVersion, operation: str) -> None:
        if operation not in version.key_ops:
            raise KeyVaultError(
                403, "Forbidden", f"Operation {operation} is not permitted on this key.", "KeyOperationForbidden"
            )

    def _check_validity(self, version: KeyVersion, operation: str) -> None:
        now = self.clock.timestamp()
        if version.nbf is not None and now < version.nbf:
            raise KeyVaultError(
                403, "Forbidden", f"Operation {operation} is not allowed before the key's nbf.", "KeyNotYetValid"
            )
        if version.exp is not None and now >= version.exp:
            raise KeyVaultError(
                403, "Forbidden", f"Operation {operation} is not allowed on an expired key.", "KeyExpired"
            )

    def encrypt(
        self, name: str, version: str | None, algorithm: str, value: bytes, *, operation: str
    ) -> tuple[StoredKey, KeyVersion, bytes]:
        """wrapKey / encrypt: allowed on a disabled version (public-key operation), refused outside nbf..exp."""
        key, target = self.get_version(name, version)
        self._check_op(name, target, operation)
        self._check_validity(target, operation)
        pad = _padding(algorithm)
        try:
            result = target.private_key().public_key().encrypt(value, pad)
        except ValueError:
            raise bad_parameter(f"The value is too long for {algorithm} with a {target.key_size}-bit key.") from None
        return key, target, result

    def decrypt(
        self, name: str, version: str | None, algorithm: str, value: bytes, *, operation: str
    ) -> tuple[StoredKey, KeyVersion, bytes]:
        """unwrapKey / decrypt: refused on a disabled version, still allowed after expiry (data stays recoverable)."""
        key, target = self.get_version(name, version)
        if not target.enabled:
            raise KeyVaultError(
                403, "Forbidden", f"Operation {operation} is not allowed on a disabled key.", "KeyDisabled"
            )
        self._check_op(name, target, operation)
        pad = _padding(algorithm)
        try:
            result = target.private_key().decrypt(value, pad)
        except ValueError:
            raise bad_parameter("The ciphertext could not be decrypted with this key and algorithm.") from None
        return key, target, result

    # ---- persistence ----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "keys": [k.to_state() for k in self.keys.values()],
            "deleted": [d.to_state() for d in self.deleted.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.keys = {k["name"].lower(): StoredKey.from_state(k) for k in data.get("keys", [])}
        self.deleted = {d["key"]["name"].lower(): DeletedKey.from_state(d) for d in data.get("deleted", [])}

    def reset(self) -> None:
        self.keys.clear()
        self.deleted.clear()
        self.on_change()
