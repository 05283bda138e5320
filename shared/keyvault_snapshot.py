"""A KeyVault that remembers what it read for the length of one sweep, so the rotation step and the compliance
report share their reads: a sweep with nothing due costs two Key Vault calls per key (the key and its policy), not
four. Any write to a key forgets what was read of it, so nothing stale outlives a change the sweep itself made.

A snapshot is older than whatever the vault did since (the sweep's pacer sleeps between keys): the version list is
never cached, and rotation decides from it after taking its claim (functions.rotation.rotate, L1), not from `get_key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.model import KeyRef, KeyVersion, RotationPolicy, WrapResult
from shared.ports import WRAP_ALGORITHM, KeyVault


class SnapshotKeyVault:
    def __init__(self, vault: KeyVault) -> None:
        self._vault = vault
        self._latest: dict[KeyRef, KeyVersion] = {}
        self._policies: dict[KeyRef, RotationPolicy | None] = {}

    def _forget(self, key: KeyRef) -> None:
        self._latest.pop(key, None)
        self._policies.pop(key, None)

    def get_key(self, key: KeyRef, version: str | None = None) -> KeyVersion:
        if version is not None:
            return self._vault.get_key(key, version)
        if key not in self._latest:
            self._latest[key] = self._vault.get_key(key)
        return self._latest[key]

    def list_versions(self, key: KeyRef) -> list[KeyVersion]:
        return self._vault.list_versions(key)

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
        self._forget(key)
        return self._vault.create_key(key, kty=kty, size=size, ops=ops, expires=expires, tags=tags)

    def rotate_key(self, key: KeyRef) -> KeyVersion:
        self._forget(key)
        return self._vault.rotate_key(key)

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
        self._forget(key)
        return self._vault.update_version(key, version, enabled=enabled, expires=expires, ops=ops, tags=tags)

    def get_rotation_policy(self, key: KeyRef) -> RotationPolicy | None:
        if key not in self._policies:
            self._policies[key] = self._vault.get_rotation_policy(key)
        return self._policies[key]

    def set_rotation_policy(self, key: KeyRef, policy: RotationPolicy) -> RotationPolicy:
        self._forget(key)
        return self._vault.set_rotation_policy(key, policy)

    def wrap_key(self, key: KeyRef, version: str, plaintext: bytes) -> WrapResult:
        return self._vault.wrap_key(key, version, plaintext)

    def unwrap_key(self, key_id: str, wrapped: bytes, algorithm: str = WRAP_ALGORITHM) -> bytes:
        return self._vault.unwrap_key(key_id, wrapped, algorithm)
