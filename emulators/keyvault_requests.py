"""Key Vault request bodies read as Key Vault reads them: base64url values, tags, key operations, attributes and the
body of a key creation, each refused with a BadParameter that names the field.

Split from emulators.keyvault, which re-exports `b64url`, `from_b64url` and `parse_create`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from emulators.keyvault_keys import RSA_KEY_OPS, RSA_KEY_SIZES, RSA_KEY_TYPES, NewKeySpec, bad_parameter

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
