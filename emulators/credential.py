"""A TokenCredential for the local emulators: its bearer token simply names the caller.

The emulators decide who is calling from the token's `oid` claim and what the caller may do from the role
assignments held by the ARM emulator, so a test or a local run picks an identity by constructing this credential
with that identity's principal id. The token is JWT-shaped but unsigned (alg "none"): nothing outside this
machine accepts it. Expiry uses the wall clock, not the emulators' movable clock, so tokens keep working after a
time-travel jump. Kept import-light (standard library only at import time).

The app never uses it: it authenticates through the managed-identity endpoint (emulators.managed_identity), which
issues the same tokens. Tests and local helper commands use this credential to act as other principals.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

DEFAULT_TENANT_ID = "8f2a1c3e-5b7d-4e90-a1b2-c3d4e5f60718"
TOKEN_LIFETIME_SECONDS = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _audience(scope: str) -> str:
    """`https://vault.azure.net/.default` -> `https://vault.azure.net` (the AADv1 resource the token is for)."""
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


def make_token(principal_id: str, tenant_id: str, audience: str, *, now: float | None = None) -> tuple[str, int]:
    """An unsigned JWT naming `principal_id`; returns (token, expires_on as unix seconds)."""
    issued = int(time.time() if now is None else now)
    expires = issued + TOKEN_LIFETIME_SECONDS
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "oid": principal_id,
        "sub": principal_id,
        "tid": tenant_id,
        "uti": uuid.uuid4().hex,
    }
    token = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."
    return token, expires


class EmulatorCredential:
    """azure.core TokenCredential (and SupportsTokenInfo) that issues emulator tokens for one principal.

    Pass it wherever an azure-identity credential would go: KeyClient, CryptographyClient,
    AuthorizationManagementClient. A tenant named by a Key Vault challenge is honoured, as azure-identity does.
    """

    def __init__(self, principal_id: str, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        try:
            uuid.UUID(principal_id)
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"principal_id: not a GUID ({principal_id!r})") from None
        self.principal_id = principal_id
        self.tenant_id = tenant_id

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> Any:
        from azure.core.credentials import AccessToken

        token, expires = self._issue(scopes, tenant_id)
        return AccessToken(token, expires)

    def get_token_info(self, *scopes: str, options: dict[str, Any] | None = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        token, expires = self._issue(scopes, (options or {}).get("tenant_id"))
        return AccessTokenInfo(token, expires, token_type="Bearer")

    def _issue(self, scopes: tuple[str, ...], tenant_id: str | None) -> tuple[str, int]:
        if not scopes:
            raise ValueError("get_token: at least one scope is required")
        return make_token(self.principal_id, tenant_id or self.tenant_id, _audience(scopes[0]))

    def close(self) -> None:
        """Nothing to release; present so the credential can be used like azure-identity's."""

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
