"""Who is pressing the button: the caller of a revocation or a restoration, and whether they may.

The function key proves the request comes from somebody holding the key, not who. Behind App Service authentication
(Easy Auth) the platform adds `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the signed-in principal's claims) and strips
any copy a client sends, so there it names the caller. A caller is authorized by object id alone (`oid`, and `tid`
when CMK_TENANT_ID is set), which Entra ID assigns and nobody chooses, or by the app role an Entra administrator
assigned (CMK_OPERATOR_ROLE, default CmkGuardian.Operator, in the principal's `roles` claims: a token for this app's
own registration carries only roles assigned in it). A display name or `preferred_username` is anyone's to pick (a
B2B guest can call itself alice@contoso.com), so names are labels for the audit trail, never credentials, and
CMK_OPERATORS holds object ids only.

The policy fails closed. Principal headers are trusted only behind Easy Auth (WEBSITE_AUTH_ENABLED=true) or in the
local run (CMK_LOCAL_RUN=true, accepted only outside Azure with a loopback ARM endpoint, like the emulators'); the
function key alone is enough only where CMK_ALLOW_FUNCTION_KEY_ONLY=true says so, or in the local run. A host that is
neither (a container, AKS, an App Service without authentication) trusts no header and refuses key-only calls.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import InvalidSetting
from shared.settings import is_loopback
from shared.untrusted import describe_value

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
PRINCIPAL_ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAME_CLAIMS = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
# The claim types Easy Auth gives app roles (`role_typ`): the token's `roles`, or its WS-Federation mapping.
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
DEFAULT_OPERATOR_ROLE = "CmkGuardian.Operator"
APP_ROLE_VALUE = re.compile(r"[!-~]{1,120}")  # Entra app role values: printable ASCII, no spaces
FUNCTION_KEY_CALLER = "function-key"
MAX_CALLER_CHARS = 128
MAX_HEADER_CHARS = 16_384


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if raw not in ("", "true", "false"):
        raise InvalidSetting(name, f"must be true or false (got {describe_value(raw, quote=True)})")
    return None if not raw else raw == "true"


def _object_ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    entries = [p.strip().lower() for p in (env.get(name) or "").split(",") if p.strip()]
    names = [e for e in entries if not GUID.fullmatch(e)]
    if names:
        raise InvalidSetting(
            name,
            f"lists object ids only (names are anyone's to choose, so never credentials); "
            f"{describe_value(names[0], quote=True)} is not a GUID",
        )
    return frozenset(entries)


@dataclass(frozen=True)
class CallerPolicy:
    operators: frozenset[str]  # lower-case object ids
    allow_function_key_only: bool
    trust_headers: bool  # behind Easy Auth, or in the local run
    tenant: str | None = None  # lower-case tenant id every operator must sign in from, when set
    operator_role: str = DEFAULT_OPERATOR_ROLE  # the Entra app role that makes a signed-in caller an operator

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CallerPolicy:
        operators = _object_ids(env, "CMK_OPERATORS")
        tenant = (env.get("CMK_TENANT_ID") or "").strip().lower() or None
        if tenant is not None and not GUID.fullmatch(tenant):
            raise InvalidSetting(
                "CMK_TENANT_ID", f"must be a tenant id (GUID), got {describe_value(tenant, quote=True)}"
            )
        role = (env.get("CMK_OPERATOR_ROLE") or "").strip() or DEFAULT_OPERATOR_ROLE
        if not APP_ROLE_VALUE.fullmatch(role):
            raise InvalidSetting(
                "CMK_OPERATOR_ROLE",
                f"must be an app role value (printable ASCII without spaces, at most 120), got "
                f"{describe_value(role, quote=True)}",
            )
        key_only = _flag(env, "CMK_ALLOW_FUNCTION_KEY_ONLY")
        local_run = bool(_flag(env, "CMK_LOCAL_RUN"))
        if local_run:
            arm = (env.get("CMK_ARM_ENDPOINT") or "").strip()
            if (env.get("WEBSITE_INSTANCE_ID") or "").strip():
                raise InvalidSetting("CMK_LOCAL_RUN", "true is refused in Azure (WEBSITE_INSTANCE_ID is set)")
            if not arm or not is_loopback(arm):
                raise InvalidSetting(
                    "CMK_LOCAL_RUN",
                    "true is allowed only against the local emulators (a loopback CMK_ARM_ENDPOINT), "
                    f"got {describe_value(arm or None, quote=True)}",
                )
        return cls(
            operators=operators,
            allow_function_key_only=key_only if key_only is not None else local_run,
            trust_headers=local_run or bool(_flag(env, "WEBSITE_AUTH_ENABLED")),
            tenant=tenant,
            operator_role=role,
        )


@dataclass(frozen=True)
class Caller:
    name: str  # what the audit trail and alerts record: never a secret
    allowed: bool
    why: str = ""


def _claims(header: str) -> tuple[dict[str, str], frozenset[str]] | None:
    """The principal's claims (first value of each type) and its app roles (every value of the role claim type)."""
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
    roles: set[str] = set()
    for claim in claims:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str):
            found.setdefault(claim["typ"], claim["val"])
            if claim["typ"] in ROLE_CLAIMS:  # never `role_typ`'s say-so: no name claim can become a role
                roles.add(claim["val"])
    name_type = document.get("name_typ")
    if isinstance(name_type, str) and name_type in found:
        found.setdefault("name", found[name_type])
    return found, frozenset(roles)


def identify(headers: Mapping[str, str], policy: CallerPolicy) -> Caller:
    """The caller and whether they may act. Never raises: a refusal is decided (and audited) by the route."""
    lowered = {name.lower(): value for name, value in headers.items()}
    claims: dict[str, str] = {}
    roles: frozenset[str] = frozenset()
    if policy.trust_headers:
        raw = (lowered.get(PRINCIPAL_HEADER.lower()) or "").strip()
        if raw:
            read = _claims(raw)
            if read is None:
                return Caller("unreadable-principal", False, f"{PRINCIPAL_HEADER} is not a readable principal")
            claims, roles = read
        for header, claim in ((PRINCIPAL_ID_HEADER, "oid"), (PRINCIPAL_NAME_HEADER, "name")):
            value = (lowered.get(header.lower()) or "").strip()
            if value:
                claims.setdefault(claim, value)
    object_id = next((claims[c] for c in OBJECT_ID_CLAIMS if claims.get(c)), "").strip().lower()
    label = next((claims[c] for c in NAME_CLAIMS if claims.get(c)), "")
    if not object_id and not label:
        if policy.allow_function_key_only:
            return Caller(FUNCTION_KEY_CALLER, True)
        return Caller(
            FUNCTION_KEY_CALLER,
            False,
            "no signed-in caller (App Service authentication) and CMK_ALLOW_FUNCTION_KEY_ONLY is not true",
        )
    shown = _shown(label, object_id)
    if not GUID.fullmatch(object_id):
        return Caller(shown, False, f"{shown}: the signed-in caller has no object id (oid); a name is no credential")
    if policy.tenant is not None:
        tenant = next((claims[c] for c in TENANT_CLAIMS if claims.get(c)), "").strip().lower()
        if tenant != policy.tenant:
            return Caller(shown, False, f"{shown} did not sign in from the tenant CMK_TENANT_ID names")
    if object_id in policy.operators or policy.operator_role in roles:
        return Caller(shown, True)
    listed = "is not in CMK_OPERATORS" if policy.operators else "is not an operator (CMK_OPERATORS lists no operator)"
    return Caller(shown, False, f"{shown} {listed} and has no app role {policy.operator_role} (CMK_OPERATOR_ROLE)")


def _shown(label: str, object_id: str) -> str:
    """What the audit trail records: the name as a label beside the object id that was judged."""
    oid = describe_value(object_id, limit=40)
    if not label:
        return oid
    return (
        f"{describe_value(label, limit=MAX_CALLER_CHARS - len(oid) - 3)} ({oid})"
        if oid
        else describe_value(label, limit=MAX_CALLER_CHARS)
    )


@functools.cache
def process_policy() -> CallerPolicy:
    """The policy from this process's app settings, read once (they change only with a restart)."""
    return CallerPolicy.from_env(os.environ)


def status_viewer(headers: Mapping[str, str], policy: CallerPolicy, *, key_checked: bool) -> Caller:
    """Who may read the status page. Where the host checked the function key (auth level FUNCTION), anyone holding it,
    named as the signed-in principal when there is one. Behind App Service authentication the page is served without
    a key (Functions gives a signed-in user no auth level of its own), so there only a signed-in operator (the app
    role, or CMK_OPERATORS) may read it: the platform strips any principal header a client forges."""
    caller = identify(headers, policy)
    if key_checked:
        return Caller(caller.name, True)
    if caller.name == FUNCTION_KEY_CALLER:
        return Caller(caller.name, False, "sign in: the status page needs a signed-in operator here")
    return caller
