"""The KeyVault port over azure-keyvault-keys: KeyClient for metadata and lifecycle, CryptographyClient for crypto.

Wrap runs locally with the version's public key (no request, no throttling budget spent); unwrap always goes to the
service. Retries follow shared.azure.retry (also re-exported here, where adapters have always imported it).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import RetryPolicy
from azure.keyvault.keys import (
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
    KeyVaultKey,
)
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.retry import RetryIncludingPost as RetryIncludingPost  # re-exported: callers import it here
from shared.azure.retry import default_retry_policy
from shared.errors import Forbidden, InvalidInput, KeyNotFound, UnwrapFailed
from shared.model import KeyRef, KeyVersion, LifetimeAction, RotationActionType, RotationPolicy, WrapResult
from shared.ports import WRAP_ALGORITHM
from shared.untrusted import describe_value


def _key_size(key: KeyVaultKey) -> int | None:
    n = getattr(key.key, "n", None)
    return len(n) * 8 if n else None


def _public_sha256(key: KeyVaultKey) -> str | None:
    """SHA-256 of the RSA public key as DER SubjectPublicKeyInfo (what `openssl pkey -pubin -outform DER | sha256sum`
    prints for the same key): how an imported version is told from a generated one (functions.compliance)."""
    n, e = getattr(key.key, "n", None), getattr(key.key, "e", None)
    if not n or not e:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    try:
        public = RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
    except ValueError:
        return None
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _to_version(ref: KeyRef, key: KeyVaultKey) -> KeyVersion:
    props = key.properties
    return KeyVersion(
        ref=ref,
        version=props.version or "",
        kty=str(getattr(key.key_type, "value", key.key_type)),
        size=_key_size(key),
        ops=tuple(str(getattr(op, "value", op)) for op in (key.key_operations or [])),
        enabled=bool(props.enabled),
        created=props.created_on,
        updated=props.updated_on,
        not_before=props.not_before,
        expires=props.expires_on,
        tags=dict(props.tags or {}),
        public_sha256=_public_sha256(key),
    )


def _to_policy(policy: KeyRotationPolicy) -> RotationPolicy:
    actions = tuple(
        LifetimeAction(
            RotationActionType(str(getattr(a.action, "value", a.action)).capitalize()),
            a.time_after_create,
            a.time_before_expiry,
        )
        for a in (policy.lifetime_actions or [])
    )
    return RotationPolicy(policy.expires_in, actions)


class AzureKeyVault:
    """One KeyClient per vault URL and one CryptographyClient per key version, built on first use and kept."""

    def __init__(
        self,
        credential: TokenCredential,
        *,
        connection_verify: str | bool = True,
        verify_challenge_resource: bool = True,
        retry_policy: RetryPolicy | None = None,
        transport: Any = None,
        response_hook: Any = None,
    ) -> None:
        self._credential = credential
        self._client_kwargs: dict[str, Any] = {
            "verify_challenge_resource": verify_challenge_resource,
            "connection_verify": connection_verify,
            "retry_policy": retry_policy or default_retry_policy(),
        }
        # A shared, sized connection pool and a per-attempt call counter (shared.azure.transport), when given.
        if transport is not None:
            self._client_kwargs["transport"] = transport
        if response_hook is not None:
            self._client_kwargs["raw_response_hook"] = response_hook
        self._lock = threading.Lock()
        self._key_clients: dict[str, KeyClient] = {}
        self._wrap_clients: dict[str, CryptographyClient] = {}
        self._unwrap_clients: dict[str, CryptographyClient] = {}

    def _client(self, vault_url: str) -> KeyClient:
        url = vault_url.rstrip("/")
        with self._lock:
            client = self._key_clients.get(url)
            if client is None:
                client = KeyClient(url, self._credential, **self._client_kwargs)
                self._key_clients[url] = client
            return client

    def get_key(self, key: KeyRef, version: str | None = None) -> KeyVersion:
        try:
            return _to_version(key, self._client(key.vault_url).get_key(key.name, version))
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}{'/' + version if version else ''}") from exc

    def list_versions(self, key: KeyRef) -> list[KeyVersion]:
        client = self._client(key.vault_url)
        try:
            # Version listings carry no public key (so no size or ops): fetch each one. Keys have few versions.
            props = list(client.list_properties_of_key_versions(key.name))
            if not props:
                raise KeyNotFound(f"key {key.name}: not found")
            return [_to_version(key, client.get_key(key.name, p.version)) for p in props]
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}") from exc

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
        client = self._client(key.vault_url)
        try:
            created = client.create_rsa_key(
                key.name,
                size=size,
                hardware_protected=kty == "RSA-HSM",
                key_operations=list(ops),
                expires_on=expires,
                tags=tags,
            )
            return _to_version(key, created)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}") from exc

    def rotate_key(self, key: KeyRef) -> KeyVersion:
        try:
            return _to_version(key, self._client(key.vault_url).rotate_key(key.name))
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}") from exc

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
        try:
            updated = self._client(key.vault_url).update_key_properties(
                key.name,
                version,
                enabled=enabled,
                expires_on=expires,
                key_operations=list(ops) if ops is not None else None,
                tags=tags,
            )
            return _to_version(key, updated)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}/{version}") from exc

    def get_rotation_policy(self, key: KeyRef) -> RotationPolicy | None:
        try:
            return _to_policy(self._client(key.vault_url).get_key_rotation_policy(key.name))
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name} rotation policy") from exc

    def set_rotation_policy(self, key: KeyRef, policy: RotationPolicy) -> RotationPolicy:
        actions = [
            KeyRotationLifetimeAction(
                KeyRotationPolicyAction.rotate
                if a.action == RotationActionType.ROTATE
                else KeyRotationPolicyAction.notify,
                time_after_create=a.time_after_create,
                time_before_expiry=a.time_before_expiry,
            )
            for a in policy.actions
        ]
        try:
            updated = self._client(key.vault_url).update_key_rotation_policy(
                key.name, KeyRotationPolicy(), lifetime_actions=actions, expires_in=policy.expires_in
            )
            return _to_policy(updated)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name} rotation policy") from exc

    def _wrap_client(self, key: KeyRef, version: str) -> CryptographyClient:
        key_id = key.version_id(version)
        with self._lock:
            client = self._wrap_clients.get(key_id)
        if client is None:
            # Built from the KeyVaultKey (public JWK present), the client wraps locally: no request per DEK.
            vault_key = self._client(key.vault_url).get_key(key.name, version)
            client = CryptographyClient(vault_key, self._credential, **self._client_kwargs)
            with self._lock:
                self._wrap_clients[key_id] = client
        return client

    def wrap_key(self, key: KeyRef, version: str, plaintext: bytes) -> WrapResult:
        try:
            result = self._wrap_client(key, version).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, plaintext)
        except ValueError as exc:
            # The SDK's local provider refuses an expired or not-yet-valid version before any request.
            raise Forbidden(f"key {key.name}/{version}: {exc}") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"key {key.name}/{version} wrapKey") from exc
        return WrapResult(key.version_id(version), WRAP_ALGORITHM, result.encrypted_key)

    def _unwrap_client(self, key_id: str) -> CryptographyClient:
        with self._lock:
            client = self._unwrap_clients.get(key_id)
            if client is None:
                client = CryptographyClient(key_id, self._credential, **self._client_kwargs)
                self._unwrap_clients[key_id] = client
            return client

    def unwrap_key(self, key_id: str, wrapped: bytes, algorithm: str = WRAP_ALGORITHM) -> bytes:
        try:
            alg = KeyWrapAlgorithm(algorithm)
        except ValueError:
            raise InvalidInput("algorithm", f"unsupported algorithm {describe_value(algorithm, quote=True)}") from None
        try:
            return self._unwrap_client(key_id).unwrap_key(alg, wrapped).key
        except HttpResponseError as exc:
            err = translate_error(exc, f"{key_id} unwrapKey")
            if isinstance(err, InvalidInput):
                raise UnwrapFailed(f"{key_id}: the value could not be unwrapped with this key version") from exc
            raise err from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"{key_id} unwrapKey") from exc

    def close(self) -> None:
        for client in [*self._key_clients.values(), *self._wrap_clients.values(), *self._unwrap_clients.values()]:
            client.close()
