"""Shard keys: a middle layer between the KEK and the DEKs, so a KEK rotation costs one unwrap per shard, not per DEK.

The idea is the one of S3 Bucket Keys and Kubernetes KMS v2: a short-lived-in-memory key per shard, itself wrapped
by the KEK, wraps the DEKs. Each shard of a `hierarchy: shard-keys` key has a shard key (AES-256) per *generation*:
the highest generation wraps new DEKs; an older one lives only until a shard-key rotation has moved its DEKs.

- A shard key is wrapped under a KEK version with the vault's `wrapKey` (RSA-OAEP-256, done locally with the public
  key, so no call) and unwrapped with `unwrapKey` (a call, as the opener's identity). It has a KCV like a DEK.
- A DEK under a shard key is wrapped locally with AES-256-GCM: `nonce(12) | ciphertext | tag(16)`; the authenticated
  data binds the label, the shard and the DEK id, so a wrapped value copied to another DEK or shard fails.
- The DEK row keeps its Format-1 layout; its `key_id` names the shard key, not a KEK version:
  `{kek versionless id}/shards/{shard}/g{generation}` with `algorithm` SHARD_WRAP_ALGORITHM. Its KeyBase therefore
  differs from the KEK's, so KEK counts (and the flat re-wrap) never mistake it for a DEK on a KEK version.

Plaintext shard keys live only in ShardKeyCache (bounded TTL, overwritten on expiry) and in `bytearray`s that the
functions here clear once they are done.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import threading
import time
import weakref
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import CmkError, InvalidInput
from shared.model import KeyRef, ShardKey, normalize_key_id

SHARD_KEY_BYTES = 32
SHARD_WRAP_ALGORITHM = "A256GCM-SK1"  # a DEK wrapped under a shard key (this module's format 1)
SHARD_AAD_LABEL = b"cmk-guardian/shard-key-wrap/v1"
SHARD_KCV_LABEL = b"cmk-guardian/shard-key-kcv/v1"
NONCE_BYTES = 12
TAG_BYTES = 16
DEFAULT_TTL_SECONDS = 300
HIERARCHY_FLAT = "flat"
HIERARCHY_SHARD_KEYS = "shard-keys"
HIERARCHIES = (HIERARCHY_FLAT, HIERARCHY_SHARD_KEYS)


class ShardKeyKcvMismatch(CmkError):
    """A shard key unwrapped to bytes whose check value is not the stored one: it must wrap or unwrap nothing."""

    code = "KcvMismatch"


class ShardUnwrapFailed(CmkError):
    """A DEK's wrapped value did not authenticate under its shard key: altered, moved, or another generation's."""

    code = "UnwrapFailed"


def check_shard_key(sk: ShardKey) -> None:
    """What every store refuses, named by field, before anything is written."""
    if not isinstance(sk.shard, str) or not sk.shard:
        raise InvalidInput("shard", "must be a non-empty string")
    if isinstance(sk.generation, bool) or not isinstance(sk.generation, int) or not 1 <= sk.generation <= 999_999:
        raise InvalidInput("generation", "must be an integer from 1 to 999999")
    base, _, version = sk.kek_id.rstrip("/").rpartition("/")
    if "/keys/" not in base or not version or "/shards/" in sk.kek_id:
        raise InvalidInput("kek_id", "must be a versioned key id (https://{vault}/keys/{name}/{version})")
    if not isinstance(sk.wrapped, bytes) or not sk.wrapped:
        raise InvalidInput("wrapped", "must be non-empty bytes")
    if not isinstance(sk.kcv, str) or not sk.kcv:
        raise InvalidInput("kcv", "must be a non-empty string")


def shard_key_id(key: KeyRef, shard: str, generation: int) -> str:
    """What a DEK under this shard key stores as its key id: under the KEK's name, never a KEK version."""
    return f"{key.versionless_id}/shards/{shard}/g{generation}"


def is_shard_wrapped(algorithm: str | None) -> bool:
    return algorithm == SHARD_WRAP_ALGORITHM


def generation_of(dek_key_id: str) -> int:
    """The shard-key generation a shard-wrapped DEK's key id names; InvalidInput naming key_id otherwise."""
    base, _, segment = dek_key_id.rstrip("/").rpartition("/")
    if "/shards/" not in base or not segment.startswith("g") or not segment[1:].isdigit():
        raise InvalidInput("key_id", "is not a shard-key id ({kek}/shards/{shard}/g{generation})")
    return int(segment[1:])


def kcv(secret: bytes | bytearray) -> str:
    return hmac.new(bytes(secret), SHARD_KCV_LABEL, hashlib.sha256).digest()[:8].hex()


def new_secret() -> bytearray:
    return bytearray(secrets.token_bytes(SHARD_KEY_BYTES))


def _aad(shard: str, dek_id: str) -> bytes:
    s, d = shard.encode(), dek_id.encode()
    return SHARD_AAD_LABEL + struct.pack(">I", len(s)) + s + struct.pack(">I", len(d)) + d


def wrap_dek(shard_secret: bytes | bytearray, shard: str, dek_id: str, dek: bytes | bytearray) -> bytes:
    """The DEK sealed under the shard key, bound to its shard and id. Local: no Key Vault call."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(bytes(shard_secret)).encrypt(nonce, bytes(dek), _aad(shard, dek_id))


def unwrap_dek(shard_secret: bytes | bytearray, shard: str, dek_id: str, wrapped: bytes) -> bytearray:
    if len(wrapped) < NONCE_BYTES + TAG_BYTES + 1:
        raise ShardUnwrapFailed(f"DEK {shard}/{dek_id}: wrapped value too short")
    try:
        plain = AESGCM(bytes(shard_secret)).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(shard, dek_id))
    except InvalidTag:
        raise ShardUnwrapFailed(f"DEK {shard}/{dek_id}: does not authenticate under its shard key") from None
    return bytearray(plain)


def unwrap_shard_key(sk: ShardKey, vault) -> bytearray:
    """One `unwrapKey` call under the shard key's KEK version, checked against its KCV."""
    secret = bytearray(vault.unwrap_key(sk.kek_id, sk.wrapped, sk.algorithm))
    if not hmac.compare_digest(kcv(secret), sk.kcv):
        secret[:] = bytes(len(secret))
        raise ShardKeyKcvMismatch(f"shard key {sk.shard}/g{sk.generation}: unwrapped value fails its check value")
    return secret


class ShardKeyCache:
    """Unwrapped shard keys, per opener (the vault port: one per identity) and per stored wrapped value, for at most
    `ttl_seconds` from the unwrap that put them here. Use never extends the TTL: a revoked or shredded KEK stops every
    open at most `ttl_seconds` after it went, because then each open needs Key Vault again. `ttl_seconds=0` caches
    nothing. Expired entries are overwritten, not just dropped."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, *, monotonic: Callable[[], float] = time.monotonic):
        if isinstance(ttl_seconds, bool) or not 0 <= ttl_seconds <= 24 * 3600:
            raise InvalidInput("ttl_seconds", "must be from 0 to 86400 seconds")
        self.ttl = float(ttl_seconds)
        self._now = monotonic
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.unwraps = 0  # Key Vault calls this cache made (for benchmarks and tests)

    def secret(self, sk: ShardKey, vault) -> bytearray:
        """A copy of the shard key's bytes (the caller clears it): from memory while fresh, else one unwrap."""
        ident = (normalize_key_id(sk.kek_id), sk.shard, sk.generation, hashlib.sha256(sk.wrapped).digest())
        now = self._now()
        with self._lock:
            per_vault = self._entries.setdefault(vault, {})
            self._expire(per_vault, now)
            hit = per_vault.get(ident)
            if hit is not None:
                return bytearray(hit[0])
        secret = unwrap_shard_key(sk, vault)
        with self._lock:
            self.unwraps += 1
            if self.ttl > 0:
                per_vault[ident] = (bytearray(secret), now + self.ttl)
        return secret

    def remember(self, sk: ShardKey, secret: bytes | bytearray, vault) -> None:
        """A shard key this process just made (so it knows the plaintext without an unwrap), for `ttl_seconds`."""
        if self.ttl <= 0:
            return
        ident = (normalize_key_id(sk.kek_id), sk.shard, sk.generation, hashlib.sha256(sk.wrapped).digest())
        with self._lock:
            self._entries.setdefault(vault, {})[ident] = (bytearray(secret), self._now() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            for per_vault in list(self._entries.values()):
                self._expire(per_vault, float("inf"))
            self._entries = weakref.WeakKeyDictionary()

    @staticmethod
    def _expire(per_vault: dict, now: float) -> None:
        for ident in [i for i, (_, until) in per_vault.items() if until <= now]:
            secret, _ = per_vault.pop(ident)
            secret[:] = bytes(len(secret))


def shard_key_generations(versions: list[ShardKey]) -> dict[str, list[ShardKey]]:
    """Shard keys grouped by shard, generations ascending (the last is the shard's current one)."""
    by_shard: dict[str, list[ShardKey]] = {}
    for sk in sorted(versions, key=lambda s: (s.shard, s.generation)):
        by_shard.setdefault(sk.shard, []).append(sk)
    return by_shard


def kek_versions_of(shard_keys: list[ShardKey]) -> dict[str, int]:
    """How many stored shard keys each KEK version wraps (normalised versioned id -> count): what retirement, status
    and counters need for a hierarchical key, read from at most shards x generations rows."""
    counts: dict[str, int] = {}
    for sk in shard_keys:
        k = normalize_key_id(sk.kek_id)
        counts[k] = counts.get(k, 0) + 1
    return counts
