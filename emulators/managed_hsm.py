"""An emulated Managed HSM: the vault emulator's keys API on its own HTTPS listener, authorized by the HSM's own local
RBAC (emulators.managed_hsm_rbac), which it also serves the way `azure-keyvault-administration`'s
`KeyVaultAccessControlClient` calls it (`/{scope}/providers/Microsoft.Authorization/roleAssignments|roleDefinitions`).

What differs from a vault, and why it matters to the app (Microsoft's Managed HSM docs):
- no Event Grid events: the store publishes into nothing, so only the app's sweep can notice a new version;
- the data plane decides from local RBAC alone (scopes `/`, `/keys`, `/keys/<name>`), never from ARM's assignments;
  its data actions are `Microsoft.KeyVault/managedHsm/keys/...`, named differently from a vault's;
- a key holds at most 100 versions: the 101st create or rotate is refused (400 BadParameter here; the exact status
  Azure returns is not documented);
- a rotation policy may not rotate more often than every 28 days, nor expire sooner (400 BadParameter);
- tokens are for `https://managedhsm.azure.net`, not the vault audience.
The HSM is also an ARM resource (`Microsoft.KeyVault/managedHSMs`) carrying purge protection and soft delete.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulators.auth import InvalidToken, read_bearer
from emulators.core import azure_error
from emulators.keyvault import VaultService
from emulators.keyvault_paths import Operation
from emulators.keyvault_store import KeyVaultError, KeyVersion, NewKeySpec, StoredKey, VaultStore, bad_parameter
from emulators.managed_hsm_rbac import PREFIX, LocalRbac, RbacError, normalize_scope
from emulators.rotation_policy import PolicyError, duration_seconds, parse_policy

HSM_RESOURCE = "https://managedhsm.azure.net"
HSM_RESOURCE_TYPE = "Microsoft.KeyVault/managedHSMs"
VERSION_CAP = 100
MIN_ROTATION_SECONDS = 28 * 86400.0
_AUTHORIZATION = "/providers/microsoft.authorization/"

# A vault operation's data action (emulators.keyvault_paths) -> the one Managed HSM checks, without `PREFIX/`.
_HSM_ACTIONS = {
    "keys/read": "keys/read/action",
    "keys/update/action": "keys/write/action",
    "keys/create/action": "keys/create",
    "keyrotationpolicies/read": "keys/read/action",
    "keyrotationpolicies/write": "keys/write/action",
    "deletedkeys/read": "keys/deletedKeys/read/action",
    "deletedkeys/delete": "keys/deletedKeys/delete",
    "deletedkeys/recover/action": "keys/deletedKeys/recover/action",
}


class NoEvents:
    """Managed HSM does not support Event Grid notifications."""

    def emit(self, *, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        return None


class HsmStore(VaultStore):
    """A vault store with Managed HSM's cap of 100 versions per key (rotations count)."""

    async def create_key(self, name: str, spec: NewKeySpec) -> tuple[StoredKey, KeyVersion]:
        existing = self.keys.get(name.lower())
        if existing is not None and len(existing.versions) >= VERSION_CAP:
            raise bad_parameter(
                f"Key {name} already has the maximum of {VERSION_CAP} versions a Managed HSM key may hold."
            )
        return await super().create_key(name, spec)


def hsm_action(operation: Operation) -> str:
    return f"{PREFIX}/{_HSM_ACTIONS.get(operation.action.lower(), operation.action)}"


def hsm_document(
    resource_id: str,
    name: str,
    *,
    location: str,
    hsm_uri: str,
    tenant_id: str,
    retention_days: int,
    purge_protection: bool,
) -> dict[str, Any]:
    """The HSM as ARM holds it (azure-mgmt-keyvault's managed_hsms.get reads this shape)."""
    return {
        "id": resource_id,
        "name": name,
        "type": HSM_RESOURCE_TYPE,
        "location": location,
        "sku": {"family": "B", "name": "Standard_B1"},
        "tags": {},
        "properties": {
            "tenantId": tenant_id,
            "hsmUri": hsm_uri,
            "initialAdminObjectIds": [],
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": retention_days,
            "enablePurgeProtection": purge_protection,
            "publicNetworkAccess": "Enabled",
            "provisioningState": "Succeeded",
            "statusMessage": "The Managed HSM is provisioned and ready to use.",
        },
    }


class ManagedHsmService(VaultService):
    """One Managed HSM: keys (the vault emulator's), local RBAC, and its listener's aiohttp application."""

    resource = HSM_RESOURCE

    def __init__(self, store: VaultStore, *, rbac: LocalRbac, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.rbac = rbac

    def classify(self, request: web.Request) -> tuple[str, str | None]:
        lowered = request.path.lower()
        if _AUTHORIZATION in lowered:
            kind = "roleassignments" if "/roleassignments" in lowered else "roledefinitions"
            return f"{request.method.lower()}{kind}", None
        return super().classify(request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if _AUTHORIZATION in request.path.lower():
            return await self.handle_rbac(request)
        return await super().handle(request)

    # ---- keys: authorization by local RBAC, the HSM's own limits ---------------------------------------------
    def authorize(self, principal_id: str, operation: Operation) -> None:
        scope = f"/keys/{operation.key_name}" if operation.key_name else "/keys"
        action = hsm_action(operation)
        if self.rbac.allows(principal_id, scope, action):
            return
        raise KeyVaultError(
            403,
            "Forbidden",
            f"Operation not allowed: the caller {principal_id} has no local RBAC role assignment that permits "
            f"'{action}' at scope '{scope}' on Managed HSM {self.store.name}. Role assignment changes may take a "
            "few minutes to take effect.",
            "AccessDenied",
        )

    async def run(self, op: Operation, request: web.Request) -> web.StreamResponse:
        if op.name == "setrotationpolicy":
            self.store.get(op.key_name or "")
            try:
                policy = parse_policy(await self.body(request))
            except PolicyError as exc:
                raise bad_parameter(str(exc)) from None
            check_hsm_policy(policy)
        return await super().run(op, request)

    # ---- local RBAC over HTTP ----------------------------------------------------------------------------------
    async def handle_rbac(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        at = path.lower().index(_AUTHORIZATION)
        scope = normalize_scope(path[:at])
        rest = [p for p in path[at + len(_AUTHORIZATION) :].split("/") if p]
        if scope is None or not rest or rest[0].lower() not in ("roleassignments", "roledefinitions") or len(rest) > 2:
            return azure_error(404, "NotFound", f"No Managed HSM operation {request.method} {path}.")
        api = request.query.get("api-version")
        if not api:
            return azure_error(400, "BadParameter", "The request is missing the required parameter api-version.")
        try:
            caller = read_bearer(request.headers.get("Authorization"), tenant_id=self.tenant_id, audience=self.resource)
        except InvalidToken as exc:
            return self.unauthorized(f"Invalid token: {exc}.")
        if caller is None:
            return self.unauthorized("Request is missing a Bearer or PoP token.")
        kind, name = rest[0].lower(), (rest[1] if len(rest) == 2 else None)
        method = request.method.upper()
        verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(method)
        if verb is None or (name is None and method != "GET"):
            return azure_error(405, "MethodNotAllowed", f"{method} is not supported on {path}.")
        kind_name = "roleAssignments" if kind == "roleassignments" else "roleDefinitions"
        action = f"{PREFIX}/{kind_name}/{verb}/action"
        if not self.rbac.allows(caller.principal_id, scope, action):
            return azure_error(
                403,
                "Forbidden",
                f"Operation not allowed: the caller {caller.principal_id} may not '{action}' at scope '{scope}'.",
                "AccessDenied",
            )
        try:
            if kind == "roleassignments":
                return await self._assignments(request, method, scope, name)
            return await self._definitions(request, method, scope, name)
        except RbacError as exc:
            return azure_error(exc.status, exc.code, exc.message)
        except KeyVaultError as exc:
            return azure_error(exc.status, exc.code, exc.message, exc.inner)

    async def _assignments(self, request: web.Request, method: str, scope: str, name: str | None) -> web.Response:
        now = self.store.clock.timestamp()
        if name is None:
            return web.json_response({"value": [a.to_json() for a in self.rbac.list_assignments(scope)]})
        if method == "GET":
            return web.json_response(self.rbac.get_assignment(scope, name).to_json())
        if method == "DELETE":
            deleted = self.rbac.delete_assignment(scope, name, now)
            self.store.on_change()
            return web.json_response(deleted.to_json())
        made, created = self.rbac.create_assignment(scope, name, await self.body(request), now)
        self.store.on_change()
        return web.json_response(made.to_json(), status=201 if created else 200)

    async def _definitions(self, request: web.Request, method: str, scope: str, name: str | None) -> web.Response:
        if scope != "/":
            raise RbacError(400, "BadParameter", f"Role definitions exist only at scope '/', not '{scope}'.")
        if name is None:
            return web.json_response({"value": [d.to_json() for d in self.rbac.definitions.values()]})
        if method == "GET":
            return web.json_response(self.rbac.get_definition(name).to_json())
        if method == "DELETE":
            deleted = self.rbac.delete_definition(name)
            self.store.on_change()
            return web.json_response(deleted.to_json())
        made = self.rbac.put_definition(name, await self.body(request))
        self.store.on_change()
        return web.json_response(made.to_json(), status=201)


def check_hsm_policy(policy: Any) -> None:
    """Managed HSM rotates no more often than every 28 days and expires no sooner (key-rotation.md)."""
    rotate = policy.rotate_action()
    if (
        rotate is not None
        and rotate.time_after_create
        and duration_seconds(rotate.time_after_create) < MIN_ROTATION_SECONDS
    ):
        raise bad_parameter(
            f"lifetimeActions: timeAfterCreate {rotate.time_after_create} is below Managed HSM's minimum of "
            "28 days (P28D)."
        )
    expiry = policy.expiry_seconds()
    if expiry is not None and expiry < MIN_ROTATION_SECONDS:
        raise bad_parameter("attributes.expiryTime: below Managed HSM's minimum of 28 days (P28D).")
