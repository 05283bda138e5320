"""The Key Vault keys REST API of one vault, served on its own HTTPS listener (the SDK names a vault by host:port).

Requests go: resolve the path to an operation -> api-version -> bearer token (401 challenge) -> RBAC decision from
ARM's role assignments (403 ForbiddenByRbac) -> the operation on the vault's store. Paths are resolved by hand rather
than by aiohttp's router (emulators.keyvault_paths); request bodies are read by emulators.keyvault_requests, and
answers are shaped by emulators.keyvault_shapes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from aiohttp import web

from emulators import access_policies
from emulators.auth import KEY_VAULT_RESOURCE, InvalidToken, challenge_header, is_permitted, read_bearer
from emulators.core import azure_error
from emulators.faults import FaultInjector, fault_middleware
from emulators.keyvault_paths import CRYPTO_OPERATIONS, Operation, resolve
from emulators.keyvault_requests import (
    b64url,
    from_b64url,
    optional_time,
    parse_attributes,
    parse_create,
    parse_import,
    parse_key_ops,
    parse_tags,
)
from emulators.keyvault_shapes import KeyShapes, api_version, recovery_attributes
from emulators.keyvault_store import (
    RSA_KEY_SIZES,
    KeyVaultError,
    KeyVersion,
    StoredKey,
    VaultStore,
    bad_parameter,
)
from emulators.rotation_policy import PolicyError, parse_policy

# Where these lived before the split; other modules and tests import them from here.
__all__ = ["Operation", "VaultService", "b64url", "from_b64url", "parse_create", "recovery_attributes", "resolve"]

API_VERSIONS = frozenset({"2025-07-01", "7.4", "7.5", "7.6"})
KEY_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
ACTION_PREFIX = "Microsoft.KeyVault/vaults/"


class DataActionSource(Protocol):
    """ARM's side of authorization (emulators.arm.ArmState)."""

    def data_actions(self, principal_id: str, scope: str) -> set[str]: ...


class VaultService(KeyShapes):
    """One vault: its store, who may call it, and the aiohttp application for its listener."""

    resource = KEY_VAULT_RESOURCE  # the token audience and challenge resource (a Managed HSM has its own)

    def __init__(
        self,
        store: VaultStore,
        *,
        authorizer: DataActionSource,
        tenant_id: str,
        faults: FaultInjector,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.tenant_id = tenant_id
        self.faults = faults

    def classify(self, request: web.Request) -> tuple[str, str | None]:
        operation = resolve(request.method, request.path)
        return (operation.name, operation.key_name) if operation else ("unknown", None)

    async def key_class(self, request: web.Request, operation: str, name: str | None) -> tuple[bool, int]:
        """The throttling class of a call: the current version's type and size, or what a create asks for."""
        if operation == "createkey":
            try:
                body = json.loads(await request.read() or b"{}")
                size = body.get("key_size") or 2048
                return str(body.get("kty", "")).endswith("-HSM"), size if size in RSA_KEY_SIZES else 2048
            except (ValueError, AttributeError):
                return False, 2048
        return self.store.key_class(name)

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[fault_middleware(self.faults, self.store.name, self.classify, self.key_class)],
            client_max_size=1024 * 1024,
        )
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        operation = resolve(request.method, request.path)
        if operation is None:
            return azure_error(404, "NotFound", f"No Key Vault operation {request.method} {request.path}.")
        api = request.query.get("api-version")
        if api not in API_VERSIONS:
            message = (
                "The request is missing the required parameter api-version."
                if not api
                else f"The specified version ({api}) is not recognized. Consider using the latest supported "
                "version (2025-07-01)."
            )
            return azure_error(400, "BadParameter", message)
        api_version.set(api)
        try:
            caller = read_bearer(request.headers.get("Authorization"), tenant_id=self.tenant_id, audience=self.resource)
        except InvalidToken as exc:
            return self.unauthorized(f"AKV10022: Invalid token: {exc}.")
        if caller is None:
            return self.unauthorized("AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.")
        try:
            if operation.key_name is not None and not KEY_NAME.match(operation.key_name):
                raise bad_parameter(
                    f"The key name {operation.key_name!r} is invalid: use 1-127 letters, digits and dashes."
                )
            self.authorize(caller.principal_id, operation)
            return await self.run(operation, request)
        except KeyVaultError as exc:
            return azure_error(exc.status, exc.code, exc.message, exc.inner)

    def unauthorized(self, message: str) -> web.Response:
        return azure_error(
            401, "Unauthorized", message, headers={"WWW-Authenticate": challenge_header(self.tenant_id, self.resource)}
        )

    def scope(self, operation: Operation) -> str:
        if operation.key_name is None:
            return self.store.resource_id
        return f"{self.store.resource_id}/keys/{operation.key_name}"

    def permitted(self, principal_id: str, scope: str, action: str) -> bool:
        """Azure's data-plane decision. ARM's per-role check is exact (a role's notDataActions exclude only that
        role's grants); with only the merged pattern sets, all exclusions apply to all grants (stricter)."""
        per_role = getattr(self.authorizer, "allows_data_action", None)
        if per_role is not None:
            return bool(per_role(principal_id, scope, action))
        granted = self.authorizer.data_actions(principal_id, scope)
        not_actions = getattr(self.authorizer, "not_data_actions", None)
        denied = not_actions(principal_id, scope) if not_actions else set()
        return is_permitted(action, granted, denied)

    def authorize(self, principal_id: str, operation: Operation) -> None:
        document = self.vault_document()
        properties = (document or {}).get("properties")
        if access_policies.uses_access_policies(properties):
            assert document is not None and properties is not None
            if access_policies.is_allowed(properties, self.tenant_id, principal_id, operation.name):
                return
            location = document.get("location", "westeurope")
            raise KeyVaultError(
                403,
                "Forbidden",
                access_policies.denial_message(self.store.name, location, self.tenant_id, principal_id, operation.name),
                "AccessDenied",
            )
        scope = self.scope(operation)
        action = ACTION_PREFIX + operation.action
        if self.permitted(principal_id, scope, action):
            return
        raise KeyVaultError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            "propagation time.\r\n"
            f"Caller: oid={principal_id};iss=https://sts.windows.net/{self.tenant_id}/\r\n"
            f"Action: '{action}'\r\n"
            f"Resource: '{scope.lower()}'\r\n"
            "Assignment: (not found)\r\n"
            "DecisionReason: 'DeniedWithNoValidRBAC'\r\n"
            f"Vault: {self.store.name}\r\n",
            "ForbiddenByRbac",
        )

    async def body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad_parameter("The request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise bad_parameter("The request body must be a JSON object.")
        return value

    async def run(self, op: Operation, request: web.Request) -> web.StreamResponse:
        store = self.store
        name = op.key_name or ""
        if op.name == "listkeys":
            items = [self.item(store.key_id(k.name), k.latest) for k in store.list_keys()]
            return self.page(request, items)
        if op.name == "getkey":
            return web.json_response(self.bundle(*store.get_version(name, op.version)))
        if op.name == "listversions":
            key = store.get(name)
            # Key Vault lists versions in version-id order, not creation order (as recorded): no caller may take
            # the last listed version as the newest.
            ordered = sorted(key.versions, key=lambda v: v.version)
            items = [self.item(store.key_id(key.name, v.version), v) for v in ordered]
            return self.page(request, items)
        if op.name == "createkey":
            spec = parse_create(await self.body(request))
            return web.json_response(self.bundle(*(await store.create_key(name, spec))))
        if op.name == "importkey":  # a new key, or a new version of one, with the caller's material
            spec = parse_import(await self.body(request))
            return web.json_response(self.bundle(*(await store.create_key(name, spec))))
        if op.name == "rotatekey":
            return web.json_response(self.bundle(*(await store.rotate(name))))
        if op.name == "updatekey":
            return web.json_response(self.bundle(*self.update(name, op.version, await self.body(request))))
        if op.name == "getrotationpolicy":
            key = store.get(name)
            return web.json_response(store.get_policy(name).to_json(f"{store.key_id(key.name)}/rotationpolicy"))
        if op.name == "setrotationpolicy":
            key = store.get(name)
            try:
                policy = parse_policy(await self.body(request))
            except PolicyError as exc:
                raise bad_parameter(str(exc)) from None
            store.set_policy(name, policy)
            return web.json_response(policy.to_json(f"{store.key_id(key.name)}/rotationpolicy"))
        if op.name in CRYPTO_OPERATIONS:
            return await self.crypto(op, request)
        if op.name == "deletekey":
            days, _ = recovery_attributes(self.vault_properties())
            return web.json_response(self.deleted_bundle(store.delete(name, retention_days=days)))
        if op.name == "listdeletedkeys":
            items = []
            for deleted in store.list_deleted():
                item = self.item(store.key_id(deleted.key.name), deleted.key.latest)
                item.update(
                    recoveryId=f"{store.url}/deletedkeys/{deleted.key.name}",
                    deletedDate=deleted.deleted_date,
                    scheduledPurgeDate=deleted.scheduled_purge_date,
                )
                items.append(item)
            return self.page(request, items)
        if op.name == "getdeletedkey":
            return web.json_response(self.deleted_bundle(store.get_deleted(name)))
        if op.name == "recoverdeletedkey":
            key = store.recover(name)
            return web.json_response(self.bundle(key, key.latest))
        if op.name == "purgedeletedkey":
            store.get_deleted(name)
            if (self.vault_properties() or {}).get("enablePurgeProtection"):
                location = (self.vault_document() or {}).get("location", "westeurope")
                raise KeyVaultError(
                    403,
                    "Forbidden",
                    'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault '
                    "service will automatically purge it after the retention period has passed.\r\n"
                    f"Vault: {store.name};location={location}",
                )
            store.purge(name)
            return web.Response(status=204)
        raise KeyVaultError(404, "NotFound", f"No Key Vault operation {op.name}.")

    def update(self, name: str, version: str | None, body: dict[str, Any]) -> tuple[StoredKey, KeyVersion]:
        attributes = parse_attributes(body)
        changes: dict[str, Any] = {"key_ops": parse_key_ops(body), "tags": parse_tags(body)}
        if attributes.get("enabled") is not None:
            changes["enabled"] = attributes["enabled"]
        for field_name in ("nbf", "exp"):
            if field_name in attributes:
                changes[field_name] = optional_time(attributes, field_name)
        return self.store.update(name, version, **changes)

    async def crypto(self, op: Operation, request: web.Request) -> web.Response:
        body = await self.body(request)
        algorithm = body.get("alg")
        if not isinstance(algorithm, str) or not algorithm:
            raise bad_parameter("alg: the algorithm is required")
        value = from_b64url(body.get("value"), "value")
        operation = CRYPTO_OPERATIONS[op.name]
        name = op.key_name or ""
        if op.name in ("wrapkey", "encrypt"):
            key, version, result = self.store.encrypt(name, op.version, algorithm, value, operation=operation)
        else:
            key, version, result = self.store.decrypt(name, op.version, algorithm, value, operation=operation)
        return web.json_response({"kid": self.store.key_id(key.name, version.version), "value": b64url(result)})
