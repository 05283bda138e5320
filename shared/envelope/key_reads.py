"""A per-process cache of versioned key reads, wrapped around the KeyVault port.

A KEK rotation of a shard-keys key sends one message per shard; each needs the target version's public key (to wrap
the shard key locally) and the creation time of the versions its rows are on (to never move a row backwards). Both
are fixed for a given version id: a version's public key and `created` never change. Reading them once per process,
not once per message, is what makes the rotation cost shards + O(1) Key Vault requests instead of 2 x shards + 1.

Only `version_of` is cached. `get_key` itself passes through (a version's `enabled`, `expires` and tags do change, and
callers that read them must see the vault), but every answer it gets fills the cache, so the fan-out's read of the
current version serves every shard message that follows it in this process.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.model import KeyRef, KeyVersion, normalize_key_id


class CachedKeyReads:
    """The KeyVault port, plus `version_of(ref, version)`: a version's immutable facts, read at most once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._versions: dict[str, KeyVersion] = {}

    def __getattr__(self, name: str) -> Any:  # every other port method goes straight to the vault
        return getattr(self.inner, name)

    def get_key(self, key: KeyRef, version: str | None = None) -> KeyVersion:
        found = self.inner.get_key(key, version)
        self._remember(found)
        return found

    def version_of(self, key: KeyRef, version: str) -> KeyVersion:
        """The version as read once in this process: use it for its public key and `created` only."""
        with self._lock:
            known = self._versions.get(normalize_key_id(key.version_id(version)))
        return known if known is not None else self.get_key(key, version)

    def cached(self) -> int:
        with self._lock:
            return len(self._versions)

    def _remember(self, found: KeyVersion) -> None:
        with self._lock:
            self._versions[normalize_key_id(found.key_id)] = found


def version_of(vault: Any, key: KeyRef, version: str) -> KeyVersion:
    """`vault.version_of` when the vault caches (production, via shared.bootstrap), else a plain versioned read."""
    cached = getattr(vault, "version_of", None)
    return cached(key, version) if callable(cached) else vault.get_key(key, version)
