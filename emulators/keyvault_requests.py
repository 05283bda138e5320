"""Key Vault request bodies read as Key Vault reads them: base64url values, tags, key operations, attributes and the
body of a key creation, each refused with a BadParameter that names the field.

Split from emulators.keyvault, which re-exports `b64url`, `from_b64url` and `parse_create`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from emulators.keyvault_keys import RSA_KEY_OPS, RSA_KEY_SIZES, RSA_KEY_TYPES, KeyVaultError, NewKeySpec, bad_parameter

MAX_TAGS = 15


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: Any, field_name: str) -> bytes:
    if not isinstance(text, str):
        raise bad_parameter(f"{field_name}: expected a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise bad_parameter(f"{field_name}: not valid base64url") from None


def optional_time(attributes: dict[str, Any], name: str) -> int | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_parameter(f"attributes.{name}: expected unix seconds, got {value!r}")
    return int(value)


def parse_tags(body: dict[str, Any]) -> dict[str, str] | None:
    tags = body.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise bad_parameter("tags: expected an object of string values")
    if len(tags) > MAX_TAGS:
        raise bad_parameter(f"tags: at most {MAX_TAGS} tags are allowed, got {len(tags)}")
    return tags


def parse_key_ops(body: dict[str, Any]) -> list[str] | None:
    ops = body.get("key_ops")
    if ops is None:
        return None
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise bad_parameter("key_ops: expected a list of strings")
    unknown = [o for o in ops if o not in RSA_KEY_OPS]
    if unknown:
        raise bad_parameter(f"key_ops: unsupported operation(s) {unknown} for an RSA key")
    return ops


def parse_attributes(body: dict[str, Any]) -> dict[str, Any]:
    attributes = {} if body.get("attributes") is None else body["attributes"]
    if not isinstance(attributes, dict):
        raise bad_parameter("attributes: expected a JSON object")
    if "enabled" in attributes and not isinstance(attributes["enabled"], bool | None):
        raise bad_parameter(f"attributes.enabled: expected true or false, got {attributes['enabled']!r}")
    return attributes


def parse_create(body: dict[str, Any]) -> NewKeySpec:
    kty = body.get("kty")
    if kty not in RSA_KEY_TYPES:
        raise bad_parameter(f"kty: unsupported key type {kty!r}; this vault creates {' and '.join(RSA_KEY_TYPES)}")
    size = body.get("key_size")
    if size is None:
        size = 2048
    if size not in RSA_KEY_SIZES or isinstance(size, bool):
        raise bad_parameter(f"key_size: {size!r} is not supported for RSA; use 2048, 3072 or 4096")
    exponent = body.get("public_exponent")
    if exponent not in (None, 65537):
        raise bad_parameter(f"public_exponent: only 65537 is supported, got {exponent!r}")
    if body.get("crv") is not None:
        raise bad_parameter("crv: a curve applies only to EC keys")
    attributes = parse_attributes(body)
    nbf, exp = optional_time(attributes, "nbf"), optional_time(attributes, "exp")
    if nbf is not None and exp is not None and exp <= nbf:
        raise bad_parameter("attributes.exp: must be later than attributes.nbf")
    exportable = attributes.get("exportable") or False
    if exportable:
        raise bad_parameter("attributes.exportable: an exportable key needs a release policy (not emulated)")
    ops = parse_key_ops(body)
    return NewKeySpec(
        kty=kty,
        key_size=size,
        key_ops=tuple(RSA_KEY_OPS if ops is None else ops),
        enabled=attributes.get("enabled", True) is not False,
        nbf=nbf,
        exp=exp,
        tags=parse_tags(body) or {},
    )


_RSA_PRIVATE = ("n", "e", "d", "p", "q")
_RSA_CRT = ("dp", "dq", "qi")


def parse_import(body: dict[str, Any]) -> NewKeySpec:
    """An import (PUT /keys/{name}) as Key Vault takes it: a JWK with the whole RSA private key (software path; with
    `Hsm: true` the vault holds it in its HSMs, kty RSA-HSM), or kty RSA-HSM with the `key_hsm` blob of the BYOK key
    transfer, which only a vault's HSM can open and this emulator does not model. A public key alone, a private key
    whose parts disagree, or a size Key Vault does not hold is refused, naming the field."""
    jwk = body.get("key")
    if not isinstance(jwk, dict):
        raise bad_parameter("key: a JSON Web Key is required")
    kty = jwk.get("kty")
    if kty not in RSA_KEY_TYPES:
        raise bad_parameter(f"key.kty: unsupported key type {kty!r}; this vault imports {' and '.join(RSA_KEY_TYPES)}")
    hsm = body.get("Hsm")
    if hsm is not None and not isinstance(hsm, bool):
        raise bad_parameter(f"Hsm: expected true or false, got {hsm!r}")
    if kty == "RSA-HSM":
        if jwk.get("key_hsm") is None:
            raise bad_parameter("key.key_hsm: an RSA-HSM import needs the BYOK key-transfer blob from your HSM")
        raise KeyVaultError(
            400, "BadParameter", "key.key_hsm: BYOK key transfer is not emulated; import kty RSA with Hsm true"
        )
    missing = [name for name in _RSA_PRIVATE if not jwk.get(name)]
    if missing:
        raise bad_parameter(f"key.{missing[0]}: an RSA import needs the private key (n, e, d, p, q); missing")
    parts = {name: int.from_bytes(from_b64url(jwk[name], f"key.{name}"), "big") for name in _RSA_PRIVATE}
    crt = {name: int.from_bytes(from_b64url(jwk[name], f"key.{name}"), "big") for name in _RSA_CRT if jwk.get(name)}
    pem, size = _private_pem(parts, crt)
    if size not in RSA_KEY_SIZES:
        raise bad_parameter(f"key.n: a {size}-bit RSA key is not supported; use 2048, 3072 or 4096")
    attributes = parse_attributes(body)
    nbf, exp = optional_time(attributes, "nbf"), optional_time(attributes, "exp")
    if nbf is not None and exp is not None and exp <= nbf:
        raise bad_parameter("attributes.exp: must be later than attributes.nbf")
    if attributes.get("exportable"):
        raise bad_parameter("attributes.exportable: an exportable key needs a release policy (not emulated)")
    ops = parse_key_ops(jwk)
    return NewKeySpec(
        kty="RSA-HSM" if hsm else "RSA",
        key_size=size,
        key_ops=tuple(RSA_KEY_OPS if ops is None else ops),
        enabled=attributes.get("enabled", True) is not False,
        nbf=nbf,
        exp=exp,
        tags=parse_tags(body) or {},
        private_pem=pem,
    )


def _private_pem(parts: dict[str, int], crt: dict[str, int]) -> tuple[str, int]:
    """The key as PKCS#8 PEM and its size; BadParameter when its parts are not one RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    n, e, d, p, q = (parts[name] for name in _RSA_PRIVATE)
    if p * q != n:
        raise bad_parameter("key: the private key's p and q do not make its modulus n")
    try:
        numbers = rsa.RSAPrivateNumbers(
            p, q, d,
            crt.get("dp", rsa.rsa_crt_dmp1(d, p)),
            crt.get("dq", rsa.rsa_crt_dmq1(d, q)),
            crt.get("qi", rsa.rsa_crt_iqmp(p, q)),
            rsa.RSAPublicNumbers(e, n),
        )  # fmt: skip
        key = numbers.private_key()
    except ValueError as exc:
        raise bad_parameter(f"key: not a valid RSA private key ({exc})") from None
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode("ascii"), n.bit_length()
