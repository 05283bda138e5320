"""Who is pressing the button: the caller of a revocation or a restoration, and whether they may.

The function key proves the request comes from somebody holding the key, not who. Behind App Service authentication
(Easy Auth) the platform adds `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the signed-in principal's claims) and strips
any copy a client sends, so there it names the caller, who must then be in CMK_OPERATORS. Without Easy Auth in front
the header is whatever the client wrote, so in Azure it is trusted only when WEBSITE_AUTH_ENABLED says Easy Auth is
on; with no caller header in Azure, CMK_ALLOW_FUNCTION_KEY_ONLY decides whether the function key alone is enough
(default: it is not). Outside Azure (the local run) the header is read as sent and the function key alone is enough.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import InvalidSetting
from shared.untrusted import describe_value

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
PRINCIPAL_ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
NAME_CLAIMS = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
FUNCTION_KEY_CALLER = "function-key"
MAX_CALLER_CHARS = 128
MAX_HEADER_CHARS = 16_384


@dataclass(frozen=True)
class CallerPolicy:
    operators: frozenset[str]  # lower-case object ids or names
    allow_function_key_only: bool
    in_azure: bool
    easy_auth: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CallerPolicy:
        operators = frozenset(p.strip().lower() for p in (env.get("CMK_OPERATORS") or "").split(",") if p.strip())
        raw = (env.get("CMK_ALLOW_FUNCTION_KEY_ONLY") or "").strip().lower()
        in_azure = bool((env.get("WEBSITE_INSTANCE_ID") or "").strip())
        if raw not in ("", "true", "false"):
            raise InvalidSetting("CMK_ALLOW_FUNCTION_KEY_ONLY", f"must be true or false (got {describe_value(raw)})")
        return cls(
            operators=operators,
            allow_function_key_only=raw == "true" if raw else not in_azure,
            in_azure=in_azure,
            easy_auth=(env.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() == "true",
        )


@dataclass(frozen=True)
class Caller:
    name: str  # what the audit trail and alerts record: never a secret
    allowed: bool
    why: str = ""


def _claims(header: str) -> dict[str, str] | None:
    if len(header) > MAX_HEADER_CHARS:
        return None
    try:
        document = json.loads(base64.b64decode(header.encode("ascii"), validate=False))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list):
        return None
    found: dict[str, str] = {}
    for claim in claims:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str):
            found.setdefault(claim["typ"], claim["val"])
    name_type = document.get("name_typ")
    if isinstance(name_type, str) and name_type in found:
        found.setdefault("name", found[name_type])
    return found


def identify(headers: Mapping[str, str], policy: CallerPolicy) -> Caller:
    """The caller and whether they may act. Never raises: a refusal is decided (and audited) by the route."""
    lowered = {name.lower(): value for name, value in headers.items()}
    trusted = policy.easy_auth or not policy.in_azure
    identities: list[str] = []
    if trusted:
        raw = (lowered.get(PRINCIPAL_HEADER.lower()) or "").strip()
        if raw:
            claims = _claims(raw)
            if claims is None:
                return Caller("unreadable-principal", False, f"{PRINCIPAL_HEADER} is not a readable principal")
            identities += [claims[c] for c in (*OBJECT_ID_CLAIMS, *NAME_CLAIMS) if claims.get(c)]
        for header in (PRINCIPAL_ID_HEADER, PRINCIPAL_NAME_HEADER):
            value = (lowered.get(header.lower()) or "").strip()
            if value:
                identities.append(value)
    if not identities:
        if policy.allow_function_key_only:
            return Caller(FUNCTION_KEY_CALLER, True)
        return Caller(
            FUNCTION_KEY_CALLER,
            False,
            "no signed-in caller (App Service authentication) and CMK_ALLOW_FUNCTION_KEY_ONLY is not true",
        )
    names = [describe_value(i, limit=MAX_CALLER_CHARS) for i in identities]
    shown = names[-1] if len(names) > 1 else names[0]
    shown = next((n for n in names if "@" in n), shown)
    if not policy.operators:
        return Caller(shown, False, "CMK_OPERATORS lists no operator")
    if not any(i.strip().lower() in policy.operators for i in identities):
        return Caller(shown, False, f"{shown} is not in CMK_OPERATORS")
    return Caller(shown, True)


@functools.cache
def process_policy() -> CallerPolicy:
    """The policy from this process's app settings, read once (they change only with a restart)."""
    return CallerPolicy.from_env(os.environ)
