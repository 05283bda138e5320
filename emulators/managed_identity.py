"""The App Service managed-identity endpoint (protocol 2019-08-01), so the app authenticates locally through the
unchanged DefaultAzureCredential / ManagedIdentityCredential, exactly the code path it runs in Azure.

azure-identity (through MSAL) uses this protocol when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set: it sends
`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=|&object_id=|&mi_res_id=]` with header
`X-IDENTITY-HEADER: <IDENTITY_HEADER>`, and reads `access_token` and `expires_on` (epoch seconds as a string).

As in App Service, the header secret identifies the app: each registration (admin API, `POST /admin/identities`)
gets its own secret, its system-assigned identity, and optionally user-assigned identities selected by client id,
object id or resource id. The token is the emulators' usual unsigned JWT naming the identity (oid) and tenant, so
Key Vault and ARM decide what it may do from role assignments (or the vault's access policies) as for any caller.
Registrations are kept across --state-dir restarts and survive the admin reset (like registered vaults): a running
app must not lose its identity because a test reset the cloud's contents.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.credential import make_token

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"
SELECTORS = ("client_id", "object_id", "principal_id", "mi_res_id")


class IdentityError(ValueError):
    """A registration the admin API refuses; the message names the field."""


@dataclass(frozen=True)
class Identity:
    principal_id: str
    client_id: str
    resource_id: str | None = None


@dataclass(frozen=True)
class Registration:
    """One app's identities, found by its X-IDENTITY-HEADER secret."""

    secret: str
    system: Identity
    user_assigned: tuple[Identity, ...] = ()

    def select(self, selector: str | None, value: str | None) -> Identity | None:
        if selector is None:
            return self.system
        for identity in (self.system, *self.user_assigned):
            field_value = {
                "client_id": identity.client_id,
                "object_id": identity.principal_id,
                "principal_id": identity.principal_id,
                "mi_res_id": identity.resource_id,
            }[selector]
            if field_value and value and field_value.lower() == value.lower():
                return identity
        return None

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Registration:
        return cls(
            data["secret"],
            Identity(**data["system"]),
            tuple(Identity(**u) for u in data.get("user_assigned", ())),
        )


def _guid(value: Any, field_name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise IdentityError(f"{field_name}: not a GUID ({value!r})") from None


def _identity(raw: Any, where: str) -> Identity:
    if not isinstance(raw, dict):
        raise IdentityError(f"{where}: expected an object with principal_id")
    principal = _guid(raw.get("principal_id"), f"{where}.principal_id")
    client = _guid(raw["client_id"], f"{where}.client_id") if raw.get("client_id") else str(uuid.uuid4())
    resource_id = raw.get("resource_id")
    if resource_id is not None and (not isinstance(resource_id, str) or not resource_id.startswith("/subscriptions/")):
        raise IdentityError(f"{where}.resource_id: expected an ARM resource id ({resource_id!r})")
    return Identity(principal, client, resource_id)


class ManagedIdentities:
    """The registrations and the token endpoint's logic (HTTP-free, for the routes below)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._registrations: dict[str, Registration] = {}

    def register(self, body: Any) -> Registration:
        """Register an app's identities; registering the same system principal again returns its registration."""
        if not isinstance(body, dict):
            raise IdentityError("body: expected {principal_id, client_id?, user_assigned?: [...]}")
        system = _identity(body, "body")
        raw_users = body.get("user_assigned") or []
        if not isinstance(raw_users, list):
            raise IdentityError("user_assigned: expected a list of {principal_id, client_id?, resource_id?}")
        users = tuple(_identity(u, f"user_assigned[{i}]") for i, u in enumerate(raw_users))
        self._check_own_principals(system, users)
        for existing in self._registrations.values():
            if existing.system.principal_id == system.principal_id:
                if not body.get("client_id"):
                    system = dataclasses.replace(system, client_id=existing.system.client_id)
                updated = Registration(existing.secret, system, users)
                self._registrations[existing.secret] = updated
                return updated
        registration = Registration(secrets.token_urlsafe(24), system, users)
        self._registrations[registration.secret] = registration
        return registration

    def _check_own_principals(self, system: Identity, users: tuple[Identity, ...]) -> None:
        """Every managed identity is its own service principal: refuse one principal for two identities, within
        this registration or against another app's (re-registering the same app is not a clash)."""
        seen = {system.principal_id: "principal_id"}
        for i, user in enumerate(users):
            where = f"user_assigned[{i}].principal_id"
            if user.principal_id in seen:
                raise IdentityError(
                    f"{where}: {user.principal_id} is already the principal of {seen[user.principal_id]}"
                )
            seen[user.principal_id] = where
        for other in self._registrations.values():
            if other.system.principal_id == system.principal_id:
                continue  # the same app registering again
            for identity in (other.system, *other.user_assigned):
                if identity.principal_id in seen:
                    raise IdentityError(
                        f"{seen[identity.principal_id]}: {identity.principal_id} is already the principal of another "
                        "app's managed identity"
                    )

    def find(self, secret: str | None) -> Registration | None:
        for known, registration in self._registrations.items():
            if secret and hmac.compare_digest(known, secret):
                return registration
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [r.to_state() for r in self._registrations.values()]

    def restore(self, data: list[dict[str, Any]]) -> None:
        self._registrations = {r.secret: r for r in (Registration.from_state(d) for d in data)}


def _refusal(status: int, message: str) -> web.Response:
    """App Service's error shape: {"statusCode", "message"} (MSAL reports both)."""
    return web.json_response({"statusCode": status, "message": message}, status=status)


def token_routes(identities: ManagedIdentities) -> list[web.RouteDef]:
    async def token(request: web.Request) -> web.Response:
        registration = identities.find(request.headers.get("X-IDENTITY-HEADER"))
        if registration is None:
            return _refusal(401, "The X-IDENTITY-HEADER header is missing or does not match this app's secret.")
        if request.query.get("api-version") != API_VERSION:
            return _refusal(400, f"api-version: this endpoint speaks {API_VERSION}")
        resource = request.query.get("resource")
        if not resource:
            return _refusal(400, "resource: the resource (audience) the token is for is required")
        chosen = [s for s in SELECTORS if request.query.get(s)]
        if len(chosen) > 1:
            return _refusal(400, f"give at most one of {', '.join(SELECTORS)} (got {', '.join(chosen)})")
        selector = chosen[0] if chosen else None
        identity = registration.select(selector, request.query.get(selector) if selector else None)
        if identity is None:
            return _refusal(400, f"{selector}: no managed identity of this app has {request.query.get(selector)!r}")
        access_token, expires_on = make_token(identity.principal_id, identities.tenant_id, resource)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }
        )

    return [web.get(TOKEN_PATH, token)]


def identity_admin_routes(identities: ManagedIdentities, endpoint: str) -> list[web.RouteDef]:
    """`POST /admin/identities` on the (loopback-only) admin listener."""

    async def register(request: web.Request) -> web.Response:
        try:
            try:
                body = await request.json() if request.can_read_body else None
            except ValueError:
                raise IdentityError("body: not valid JSON") from None
            registration = identities.register(body)
        except IdentityError as exc:
            return web.json_response({"error": {"code": "InvalidRequest", "message": str(exc)}}, status=400)
        return web.json_response(
            {
                "identity_endpoint": endpoint,
                "identity_header": registration.secret,
                "principal_id": registration.system.principal_id,
                "client_id": registration.system.client_id,
            },
            status=201,
        )

    return [web.post("/admin/identities", register)]
