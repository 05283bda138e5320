"""Consumers in the emulated cloud, set up as a real deployment sets them up: a key, a user-assigned identity holding
Key Vault Crypto Service Encryption User on it, and a MySQL flexible server or disk encryption set using that key
through that identity. Shared by the contract tests and the emulator tests."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from tests.support.emulators import Emulators

CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
MYSQL_API = "2023-12-30"
DES_API = "2024-03-02"


@dataclass(frozen=True)
class Consumer:
    kind: str
    resource_id: str
    principal_id: str
    key_name: str
    assignment: str  # the identity's role assignment on the key (a full id)


class ConsumerWorld:
    """One operator (Key Vault Administrator on the vault, for keys) driving keys, identities and consumers."""

    def __init__(self, emu: Emulators) -> None:
        from azure.mgmt.resource.resources import ResourceManagementClient

        self.emu = emu
        self.operator = str(uuid.uuid4())
        self.group = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-consumers"
        self.authorization = emu.authorization_client(self.operator)
        self.arm = ResourceManagementClient(
            emu.credential(self.operator), emu.subscription_id, base_url=emu.arm_url, connection_verify=emu.ca_cert
        )
        self._assignments: list[str] = []
        self._resources: list[tuple[str, str]] = []  # (id, api-version), deleted in reverse order
        self._keys: set[str] = set()
        self._operator_grant = self.grant(self.operator, ADMINISTRATOR, emu.vault_resource_id())
        self.keys = emu.key_client(self.operator)

    def close(self) -> None:
        """Take away everything made here, so a shared emulator (the contract session's) is left as it was."""
        for resource_id, api in reversed(self._resources):
            self.call("DELETE", resource_id, api)
        for name in self._keys:
            with contextlib.suppress(ResourceNotFoundError):  # the test deleted it itself
                self.keys.begin_delete_key(name).wait()
        for assignment in self._assignments:
            if assignment != self._operator_grant:
                self.revoke(assignment)
        self.revoke(self._operator_grant)
        self.keys.close()
        self.arm.close()
        self.authorization.close()

    # ---- ARM ----------------------------------------------------------------------------------------------
    def call(self, method: str, resource_id: str, api: str, body: Any = None) -> tuple[int, Any]:
        from azure.core.rest import HttpRequest

        if method == "PUT":
            self._resources.append((resource_id, api))

        response = self.arm.send_request(
            HttpRequest(method, f"{self.emu.arm_url}{resource_id}?api-version={api}", json=body)
        )
        return response.status_code, (response.json() if response.text() else None)

    def properties(self, resource_id: str, api: str) -> dict[str, Any]:
        status, body = self.call("GET", resource_id, api)
        assert status == 200, body
        return body["properties"]

    def grant(self, principal_id: str, role_guid: str, scope: str) -> str:
        name = str(uuid.uuid4())
        created = self.authorization.role_assignments.create(
            scope,
            name,
            {
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{self.emu.subscription_id}/providers/"
                    f"Microsoft.Authorization/roleDefinitions/{role_guid}",
                    "principalId": principal_id,
                    "principalType": "ServicePrincipal",
                }
            },
        )
        self._assignments.append(created.id)
        return created.id

    def revoke(self, assignment_id: str) -> None:
        if assignment_id in self._assignments:
            self._assignments.remove(assignment_id)
        self.authorization.role_assignments.delete_by_id(assignment_id)

    # ---- keys ---------------------------------------------------------------------------------------------
    def new_key(self, name: str | None = None) -> tuple[str, str]:
        """(key name, versioned key id)."""
        name = name or f"cmk-{uuid.uuid4().hex[:8]}"
        key = self.keys.create_rsa_key(name, size=2048)
        self._keys.add(name)
        return name, key.id

    def new_version(self, name: str) -> str:
        return self.keys.create_rsa_key(name, size=2048).id

    def disable(self, key_id: str) -> None:
        name, version = key_id.rstrip("/").split("/")[-2:]
        self.keys.update_key_properties(name, version, enabled=False)

    # ---- consumers ----------------------------------------------------------------------------------------
    def identity(self, name: str) -> tuple[str, str]:
        """(resource id, principal id) of a new user-assigned identity."""
        principal = str(uuid.uuid4())
        resource_id = f"{self.group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        body = {"location": "westeurope", "properties": {"principalId": principal, "tenantId": self.emu.tenant_id}}
        status, answer = self.call("PUT", resource_id, "2023-01-31", body)
        assert status in (200, 201), answer
        return resource_id, principal

    def mysql(self, key_id: str, *, geo_key_id: str | None = None) -> Consumer:
        suffix = uuid.uuid4().hex[:8]
        identity_id, principal = self.identity(f"id-mysql-{suffix}")
        key_name = key_id.rstrip("/").split("/")[-2]
        assignment = self.grant(principal, CRYPTO_SERVICE_ENCRYPTION_USER, self.emu.key_scope(key_name))
        encryption: dict[str, Any] = {
            "type": "AzureKeyVault",
            "primaryKeyURI": key_id,
            "primaryUserAssignedIdentityId": identity_id,
        }
        if geo_key_id:
            encryption.update(geoBackupKeyURI=geo_key_id, geoBackupUserAssignedIdentityId=identity_id)
        resource_id = f"{self.group}/providers/Microsoft.DBforMySQL/flexibleServers/mysql-{suffix}"
        body = {
            "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
            "properties": {"version": "8.0.21", "dataEncryption": encryption},
        }
        status, answer = self.call("PUT", resource_id, MYSQL_API, body)
        assert status in (200, 201), answer
        return Consumer("mysql-flexible-server", resource_id, principal, key_name, assignment)

    def des(self, key_id: str, *, follow_latest: bool = False) -> Consumer:
        suffix = uuid.uuid4().hex[:8]
        identity_id, principal = self.identity(f"id-des-{suffix}")
        key_name = key_id.rstrip("/").split("/")[-2]
        assignment = self.grant(principal, CRYPTO_SERVICE_ENCRYPTION_USER, self.emu.key_scope(key_name))
        resource_id = f"{self.group}/providers/Microsoft.Compute/diskEncryptionSets/des-{suffix}"
        body = {
            "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
            "properties": {
                "activeKey": {"keyUrl": key_id, "sourceVault": {"id": self.emu.vault_resource_id()}},
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "rotationToLatestKeyVersionEnabled": follow_latest,
            },
        }
        status, answer = self.call("PUT", resource_id, DES_API, body)
        assert status in (200, 201), answer
        return Consumer("disk-encryption-set", resource_id, principal, key_name, assignment)

    def history(self, resource_id: str) -> dict[str, Any]:
        consumers = self.emu.admin("GET", "consumers", expect=200)[1]["consumers"]
        return next(v for k, v in consumers.items() if k.lower() == resource_id.lower())
