"""Envelope encryption for applications: a random AES-256 data key (DEK) per record set, wrapped under a managed key.

A DEK is created under the key's current version (wrapped locally with its public key: no vault call spent beyond
reading which version is current), stored in the DEK registry, and opened by a remote unwrap under the exact version
it was wrapped with. Every opened DEK is checked against its key check value (KCV) before it is used or re-wrapped,
so an unwrap that returns the wrong bytes (a tampered wrapped value that still decrypts, a mixed-up version) is
caught instead of silently encrypting data under a key nobody can reproduce.

KCV: the first 8 bytes of HMAC-SHA256 keyed with the DEK over the fixed label `KCV_LABEL`, as 16 hex digits. It
reveals nothing usable about the DEK (a MAC of a constant under a 256-bit key) and is cheap to recompute.

Ciphertext (version 1): one version byte `0x01`, a 12-byte random nonce, then AES-256-GCM's ciphertext and 16-byte
tag. The authenticated data is `AAD_LABEL`, the DEK id (length-prefixed) and the caller's aad, so a ciphertext
moved under another DEK, or given another context, fails to decrypt.

Plaintext DEK bytes live only inside `DekHandle`: its repr and str name the DEK, never the bytes; no exception
raised here carries them; `close()` (or a `with` block) overwrites them once the caller is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import struct
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.envelope.sharding import DEFAULT_SHARDS, shard_count, shard_of
from shared.errors import CmkError, InvalidInput, KeyDisabled
from shared.inventory.model import ManagedKey
from shared.model import ConsumerKind, KeyRef, KeyVersion, WrappedDek
from shared.ports import DekStore, KeyVault

DEK_BYTES = 32
KCV_LABEL = b"cmk-guardian/dek-kcv/v1"
KCV_BYTES = 8
AAD_LABEL = b"cmk-guardian/envelope/v1"
CIPHERTEXT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16


class KcvMismatch(CmkError):
    """An unwrap returned bytes whose key check value is not the stored one: that DEK must not be used or re-wrapped."""

    code = "KcvMismatch"


class DecryptFailed(CmkError):
    """The ciphertext did not authenticate: altered, under another DEK, with other aad, or not ours at all."""

    code = "DecryptFailed"


class DekHandle:
    """An opened DEK: its registry record and the plaintext key, which never leaves this object except into AESGCM."""

    __slots__ = ("_closed", "_secret", "record")

    def __init__(self, record: WrappedDek, secret: bytes | bytearray) -> None:
        self.record = record
        self._secret = bytearray(secret)
        self._closed = False

    @property
    def dek_id(self) -> str:
        return self.record.dek_id

    @property
    def partition(self) -> str:
        return self.record.partition

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Overwrite the key bytes; the handle can no longer encrypt or decrypt."""
        for i in range(len(self._secret)):
            self._secret[i] = 0
        self._closed = True

    def __enter__(self) -> DekHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DekHandle(partition={self.partition!r}, dek_id={self.dek_id!r}, key_id={self.record.key_id!r})"

    __str__ = __repr__

    def __reduce__(self):  # pickling would write the key bytes somewhere: refuse
        raise TypeError("a DekHandle holds a plaintext DEK and cannot be pickled")

    def _aead(self) -> AESGCM:
        if self.closed:
            raise InvalidInput("dek", "this DEK handle was closed")
        return AESGCM(bytes(self._secret))


def key_check_value(secret: bytes | bytearray) -> str:
    return hmac.new(bytes(secret), KCV_LABEL, hashlib.sha256).digest()[:KCV_BYTES].hex()


def create_dek(
    key: ManagedKey | KeyRef,
    *,
    vault: KeyVault,
    store: DekStore,
    partition: str | None = None,
    dek_id: str | None = None,
    prefix: str | None = None,
    shards: int | None = None,
    current: KeyVersion | None = None,
) -> DekHandle:
    """A new DEK under `key`'s current version, stored and returned open. Its partition is `partition`, else its shard
    under `prefix` (default: a ManagedKey's dek-table consumer's partition_prefix and shard count, else the key's
    name and 16 shards), computed by shared.envelope.sharding as the re-wrap fan-out computes it. `current`, when the
    caller already read the key's current version (a batch of DEKs), saves one vault read per DEK."""
    ref = key.ref if isinstance(key, ManagedKey) else key
    dek_id = dek_id or uuid.uuid4().hex
    if partition is None:
        options = _dek_table_options(key)
        prefix = prefix if prefix is not None else str(options.get("partition_prefix") or ref.name)
        count = shards if shards is not None else (shard_count(options) if options else DEFAULT_SHARDS)
        partition = shard_of(dek_id, prefix, count)
    current = current or vault.get_key(ref)
    if not current.enabled:
        raise KeyDisabled(f"key {ref.name}/{current.version}: the current version is disabled; no DEK can be made")
    secret = bytearray(secrets.token_bytes(DEK_BYTES))
    try:
        wrapped = vault.wrap_key(ref, current.version, bytes(secret))
        record = store.add(
            WrappedDek(partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(secret))
        )
        return DekHandle(record, secret)
    finally:
        secret[:] = bytes(len(secret))


def open_dek(partition: str, dek_id: str, *, vault: KeyVault, store: DekStore) -> DekHandle:
    """The stored DEK, unwrapped remotely under its own versioned key id and checked against its KCV.
    UnwrapFailed when the vault cannot unwrap it; KcvMismatch when the bytes it returned are not that DEK."""
    return unwrap_checked(store.get(partition, dek_id), vault=vault)


def unwrap_checked(record: WrappedDek, *, vault: KeyVault) -> DekHandle:
    """`record` unwrapped and KCV-checked: what open_dek and a re-wrap both need before touching the DEK."""
    secret = bytearray(vault.unwrap_key(record.key_id, record.wrapped, record.algorithm))
    try:
        if not hmac.compare_digest(key_check_value(secret), record.kcv):
            raise KcvMismatch(
                f"DEK {record.partition}/{record.dek_id}: the unwrapped value does not match its key check value"
            )
        return DekHandle(record, secret)
    finally:
        secret[:] = bytes(len(secret))


def rewrapped(dek: DekHandle, *, vault: KeyVault, key: KeyRef, version: str) -> WrappedDek:
    """The record of an opened DEK wrapped (locally) under `version`, the old copy kept as previous; the caller
    replaces it in the store with the ETag it read, so a concurrent re-wrap loses cleanly."""
    result = vault.wrap_key(key, version, bytes(dek._secret))
    return dataclasses.replace(
        dek.record,
        key_id=result.key_id,
        algorithm=result.algorithm,
        wrapped=result.wrapped,
        previous_key_id=dek.record.key_id,
        previous_wrapped=dek.record.wrapped,
    )


def encrypt(dek: DekHandle, plaintext: bytes, aad: bytes = b"") -> bytes:
    if not isinstance(plaintext, bytes | bytearray):
        raise InvalidInput("plaintext", "must be bytes")
    nonce = os.urandom(NONCE_BYTES)
    body = dek._aead().encrypt(nonce, bytes(plaintext), _aad(dek, aad))
    return bytes([CIPHERTEXT_VERSION]) + nonce + body


def decrypt(dek: DekHandle, ciphertext: bytes, aad: bytes = b"") -> bytes:
    if not isinstance(ciphertext, bytes | bytearray) or len(ciphertext) < 1 + NONCE_BYTES + TAG_BYTES:
        raise DecryptFailed("ciphertext: too short to be an envelope ciphertext")
    if ciphertext[0] != CIPHERTEXT_VERSION:
        raise DecryptFailed(f"ciphertext: unknown format version {ciphertext[0]}")
    nonce, body = bytes(ciphertext[1 : 1 + NONCE_BYTES]), bytes(ciphertext[1 + NONCE_BYTES :])
    try:
        return dek._aead().decrypt(nonce, body, _aad(dek, aad))
    except InvalidTag:
        raise DecryptFailed(
            f"ciphertext: does not authenticate under DEK {dek.dek_id} (altered, another DEK, or other aad)"
        ) from None


def _aad(dek: DekHandle, aad: bytes) -> bytes:
    if not isinstance(aad, bytes | bytearray):
        raise InvalidInput("aad", "must be bytes")
    dek_id = dek.dek_id.encode()
    return AAD_LABEL + struct.pack(">I", len(dek_id)) + dek_id + bytes(aad)


def _dek_table_options(key: ManagedKey | KeyRef) -> dict:
    if isinstance(key, ManagedKey):
        for consumer in key.consumers:
            if consumer.kind is ConsumerKind.DEK_TABLE:
                return dict(consumer.options)
    return {}
