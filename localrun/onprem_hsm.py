"""The local run's stand-in for the customer's on-premises HSM (never used against Azure): RSA key material made
here, imported into the emulated vault with the SDK's own `KeyClient.import_key`, so the import path the local run and
the tests drive is the real one.

Key material never leaves the test: what the app sees is only the vault's public view and the import tag
(`cmk-import-sha256`: SHA-256 of the public key as DER SubjectPublicKeyInfo), as an operator would set it with
`openssl pkey -pubin -outform DER | sha256sum`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.compliance import IMPORT_TAG


def _bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def onprem_key(size: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def public_sha256(private: rsa.RSAPrivateKey) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def import_tags(private: rsa.RSAPrivateKey) -> dict[str, str]:
    """The tag the documented import step sets on each imported version."""
    return {IMPORT_TAG: public_sha256(private)}


def jwk_of(private: rsa.RSAPrivateKey, ops: list[str] | None = None) -> Any:
    """The SDK's JsonWebKey for `private` (the software import path: the whole private key)."""
    from azure.keyvault.keys import JsonWebKey

    numbers = private.private_numbers()
    public = numbers.public_numbers
    return JsonWebKey(
        kty="RSA",
        key_ops=ops or ["wrapKey", "unwrapKey"],
        n=_bytes(public.n),
        e=_bytes(public.e),
        d=_bytes(numbers.d),
        p=_bytes(numbers.p),
        q=_bytes(numbers.q),
        dp=_bytes(numbers.dmp1),
        dq=_bytes(numbers.dmq1),
        qi=_bytes(numbers.iqmp),
    )


def import_into(client: Any, name: str, private: rsa.RSAPrivateKey, *, ops: list[str] | None = None, **kwargs: Any):
    """Import `private` as the next version of `name` (HSM-protected, tagged as the import step documents); the
    SDK's KeyVaultKey."""
    kwargs.setdefault("hardware_protected", True)
    tags = {**import_tags(private), **(kwargs.pop("tags", None) or {})}
    return client.import_key(name, jwk_of(private, ops), tags=tags, **kwargs)


def key_client(cloud: Any, principal_id: str | None = None) -> Any:
    """An unchanged KeyClient on the emulated vault, acting as `principal_id` (the operator by default)."""
    from azure.keyvault.keys import KeyClient

    return KeyClient(
        cloud.vault_url, cloud.credential(principal_id), connection_verify=cloud.ca_cert,
        verify_challenge_resource=False,
    )  # fmt: skip
