"""An in-memory Key Vault that behaves like the service for what the app uses.

Real RSA keys (so a wrap under one version really fails to unwrap under another), version history, enabled flags,
expiry, rotation policy minimums, and the same project errors the Azure adapter raises. Private keys are made on first
crypto use and cached per process, so tests that never wrap pay nothing for them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from functions.compliance import IMPORT_TAG
from shared.errors import Forbidden, InvalidInput, KeyDisabled, KeyNotFound, UnwrapFailed
from shared.model import (
    KeyRef,
    KeyVersion,
    LifetimeAction,
    RotationActionType,
    RotationPolicy,
    WrapResult,
    normalize_host,
)
from shared.ports import WRAP_ALGORITHM
from shared.rotation_policy import duration_to_timedelta, validate_rotation_policy
from tests.fakes.clock import FakeClock

# What Key Vault reports for a key that never had a rotation policy, and adds to a saved policy without a Notify.
DEFAULT_NOTIFY = LifetimeAction(RotationActionType.NOTIFY, None, "P30D")
DEFAULT_POLICY = RotationPolicy(None, (DEFAULT_NOTIFY,))
_HASHES = {"RSA-OAEP-256": hashes.SHA256, "RSA-OAEP": hashes.SHA1}


_PRIVATE_KEYS: dict[tuple[int, int], rsa.RSAPrivateKey] = {}
_PRIVATE_KEYS_LOCK = threading.Lock()


def _private_key(size: int, seq: int) -> rsa.RSAPrivateKey:
    """One RSA key per (size, version sequence), made once and kept: generating is slow, so fakes of many tests share
    them, and a key must never change under a version (an lru_cache could evict it, or race to make two)."""
    with _PRIVATE_KEYS_LOCK:
        key = _PRIVATE_KEYS.get((size, seq))
        if key is None:
            key = _PRIVATE_KEYS[(size, seq)] = rsa.generate_private_key(public_exponent=65537, key_size=size)
        return key


@dataclass
class _Version:
    meta: KeyVersion
    seq: int

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return _private_key(self.meta.size or 2048, self.seq)


@dataclass
class _Key:
    versions: dict[str, _Version] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    policy: RotationPolicy | None = None


class FakeKeyVault:
    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self._keys: dict[tuple[str, str], _Key] = {}
        self._seq = 0
        self.unwrap_calls = 0
        self.wrap_calls = 0

    # -- helpers --------------------------------------------------------------------------------------------------
    def _key(self, key: KeyRef) -> _Key:
        # One vault however its URL is spelled (case, :443, private-link alias), as Azure resolves it.
        found = self._keys.get((normalize_host(key.vault_url), key.name.lower()))
        if found is None:
            raise KeyNotFound(f"A key with (name/id) {key.name} was not found in this key vault.")
        return found

    def _version(self, key: KeyRef, version: str | None) -> _Version:
        k = self._key(key)
        if version is None:
            return k.versions[k.order[-1]]
        v = k.versions.get(version)
        if v is None:
            raise KeyNotFound(f"A key with (name/id) {key.name}/{version} was not found in this key vault.")
        return v

    @staticmethod
    def _parse_key_id(key_id: str) -> tuple[KeyRef, str]:
        head, sep, rest = key_id.partition("/keys/")
        parts = rest.strip("/").split("/")
        if not sep or len(parts) != 2 or not all(parts):
            raise InvalidInput("key_id", f"not a versioned key id ({key_id!r})")
        return KeyRef(head, parts[0]), parts[1]

    # -- KeyVault port ---------------------------------------------------------------------------------------------
    def get_key(self, key: KeyRef, version: str | None = None) -> KeyVersion:
        return self._version(key, version).meta

    def list_versions(self, key: KeyRef) -> list[KeyVersion]:
        k = self._key(key)
        # Key Vault lists versions in version-id order, not creation order.
        return [k.versions[v].meta for v in sorted(k.order)]

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
        if kty not in ("RSA", "RSA-HSM"):
            raise InvalidInput("kty", f"unsupported key type {kty!r}")
        if size not in (2048, 3072, 4096):
            raise InvalidInput("key_size", f"unsupported RSA key size {size}")
        k = self._keys.setdefault((normalize_host(key.vault_url), key.name.lower()), _Key())
        return self._add_version(key, k, kty, size, tuple(ops), expires, dict(tags or {}))

    def import_key(
        self,
        key: KeyRef,
        *,
        kty: str,
        size: int,
        ops: Iterable[str],
        expires: datetime | None = None,
        tagged: bool = True,
    ) -> KeyVersion:
        """What an operator's import from the on-premises HSM makes (test-only: the app never imports): a new version
        of fresh material, tagged as the documented import step tags it (`tagged=False`: someone forgot)."""
        k = self._keys.setdefault((normalize_host(key.vault_url), key.name.lower()), _Key())
        meta = self._add_version(key, k, kty, size, tuple(ops), expires, {})
        if tagged:
            meta = self.update_version(key, meta.version, tags={IMPORT_TAG: meta.public_sha256 or ""})
        return meta

    def _add_version(self, key, k: _Key, kty, size, ops, expires, tags) -> KeyVersion:
        now = self.clock.now()
        self._seq += 1
        version = uuid.uuid4().hex
        # The public key's fingerprint, as the adapter reads it: here a stand-in for this version's own material.
        public = hashlib.sha256(f"{size}:{self._seq}".encode()).hexdigest()
        meta = KeyVersion(key, version, kty, size, ops, True, now, now, None, expires, tags, public)
        k.versions[version] = _Version(meta, self._seq)
        k.order.append(version)
        return meta

    def rotate_key(self, key: KeyRef) -> KeyVersion:
        k = self._key(key)
        latest = k.versions[k.order[-1]].meta
        expires = None
        if k.policy and k.policy.expires_in:
            expires = self.clock.now() + duration_to_timedelta(k.policy.expires_in)
        return self._add_version(key, k, latest.kty, latest.size, latest.ops, expires, dict(latest.tags))

    def update_version(
        self,
        key: KeyRef,
        version: str,
        *,
        enabled: bool | None = None,
        expires: datetime | None = None,
        ops: Iterable[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> KeyVersion:
        v = self._version(key, version)
        changes: dict = {"updated": self.clock.now()}
        if enabled is not None:
            changes["enabled"] = enabled
        if expires is not None:
            changes["expires"] = expires
        if ops is not None:
            changes["ops"] = tuple(ops)
        if tags is not None:
            changes["tags"] = dict(tags)
        v.meta = replace(v.meta, **changes)
        return v.meta

    def get_rotation_policy(self, key: KeyRef) -> RotationPolicy | None:
        return self._key(key).policy or DEFAULT_POLICY

    def set_rotation_policy(self, key: KeyRef, policy: RotationPolicy) -> RotationPolicy:
        k = self._key(key)
        validate_rotation_policy(policy)
        if not any(a.action == RotationActionType.NOTIFY for a in policy.actions):
            policy = replace(policy, actions=(*policy.actions, DEFAULT_NOTIFY))
        k.policy = policy
        return policy

    def wrap_key(self, key: KeyRef, version: str, plaintext: bytes) -> WrapResult:
        v = self._version(key, version)
        now = self.clock.now()
        if "wrapKey" not in v.meta.ops:
            raise Forbidden(f"Operation wrapKey is not permitted on key {key.name}/{version}")
        if v.meta.expires and v.meta.expires <= now:
            raise Forbidden(f"Key {key.name}/{version} expired at {v.meta.expires.isoformat()}")
        if v.meta.not_before and v.meta.not_before > now:
            raise Forbidden(f"Key {key.name}/{version} is not valid before {v.meta.not_before.isoformat()}")
        self.wrap_calls += 1
        pad = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        return WrapResult(v.meta.key_id, WRAP_ALGORITHM, v.private_key.public_key().encrypt(plaintext, pad))

    def unwrap_key(self, key_id: str, wrapped: bytes, algorithm: str = WRAP_ALGORITHM) -> bytes:
        key, version = self._parse_key_id(key_id)
        v = self._version(key, version)
        if not v.meta.enabled:
            raise KeyDisabled("Operation unwrapKey is not allowed on a disabled key")
        if "unwrapKey" not in v.meta.ops:
            raise Forbidden(f"Operation unwrapKey is not permitted on key {key.name}/{version}")
        if algorithm not in _HASHES:
            raise InvalidInput("algorithm", f"unsupported algorithm {algorithm!r}")
        self.unwrap_calls += 1
        h = _HASHES[algorithm]
        try:
            return v.private_key.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        except ValueError as exc:
            raise UnwrapFailed("The wrapped value could not be unwrapped with this key version") from exc

    # -- test conveniences (not part of the port) -----------------------------------------------------------------
    def has_rotate_action(self, key: KeyRef) -> bool:
        policy = self._key(key).policy
        return bool(policy and any(a.action == RotationActionType.ROTATE for a in policy.actions))
