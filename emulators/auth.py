"""Who is calling and may they: the Key Vault challenge, reading emulator bearer tokens, matching data actions.

Key Vault answers a request without a token with 401 and a `WWW-Authenticate: Bearer authorization=...,
resource=...` challenge; the SDK then fetches a token for that resource and tenant and retries. A token names the
caller by its `oid` claim (see emulators.credential). What the caller may do comes from ARM role assignments as raw
dataActions / notDataActions patterns, matched here the way Azure does: case-insensitive, `*` matches anything
(including slashes).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

KEY_VAULT_RESOURCE = "https://vault.azure.net"


@dataclass(frozen=True)
class Caller:
    principal_id: str
    tenant_id: str
    audience: str


class InvalidToken(Exception):
    """The Authorization header is present but unusable; the message says why (it never echoes the token)."""


def challenge_header(tenant_id: str, resource: str = KEY_VAULT_RESOURCE) -> str:
    return f'Bearer authorization="https://login.microsoftonline.com/{tenant_id}", resource="{resource}"'


def _decode_segment(segment: str) -> dict:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidToken("the bearer token is not a JWT") from exc
    if not isinstance(value, dict):
        raise InvalidToken("the bearer token is not a JWT")
    return value


def read_bearer(authorization: str | None, *, tenant_id: str, audience: str, now: float | None = None) -> Caller | None:
    """The caller named by an `Authorization: Bearer <jwt>` header; None when there is no header at all.

    Checks the shape, expiry (wall clock), tenant and audience; raises InvalidToken naming what was wrong.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header is not a Bearer token")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidToken("the bearer token is not a JWT")
    claims = _decode_segment(parts[1])
    oid = claims.get("oid")
    if not isinstance(oid, str) or not oid:
        raise InvalidToken("the bearer token has no oid claim")
    exp = claims.get("exp")
    current = time.time() if now is None else now
    if not isinstance(exp, int | float) or exp <= current:
        raise InvalidToken("the bearer token has expired")
    if claims.get("tid") != tenant_id:
        raise InvalidToken(f"the bearer token was issued for another tenant ({claims.get('tid')!r})")
    token_audience = str(claims.get("aud", "")).rstrip("/")
    if token_audience != audience.rstrip("/"):
        raise InvalidToken(f"the bearer token's audience {token_audience!r} is not {audience!r}")
    return Caller(principal_id=oid, tenant_id=tenant_id, audience=token_audience)


def action_matches(action: str, pattern: str) -> bool:
    """Azure action patterns: case-insensitive, `*` is a wildcard that may span slashes."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def is_permitted(action: str, granted: Iterable[str], denied: Iterable[str] = ()) -> bool:
    """Granted by some dataActions pattern and not excluded by any notDataActions pattern."""
    return any(action_matches(action, p) for p in granted) and not any(action_matches(action, p) for p in denied)
