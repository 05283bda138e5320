"""Event payloads shaped like the samples Microsoft publishes for Key Vault, ARM and Event Grid system events.

Each builder returns a fresh, mutable dict so a test can damage its copy. The Key Vault ones keep the quirks of the
published samples where asked (a stray space in a field name and in a value, NBF/EXP as strings).
"""

from __future__ import annotations

from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-cmk-reference"
VAULT_NAME = "kv-cmk-reference"
VAULT_URL = f"https://{VAULT_NAME}.vault.azure.net"
SUBSCRIPTION_ID = f"/subscriptions/{SUBSCRIPTION}"
RESOURCE_GROUP_ID = f"{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
VAULT_RESOURCE_ID = f"{RESOURCE_GROUP_ID}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"
AKS_KEY = "aks-encryption-key"
MYSQL_KEY = "mysql-encryption-key"
VERSION = "7f3c2a9d41b84e6a9c0d5e1f2a3b4c5d"
NBF = 1735689600  # 2025-01-01T00:00:00Z
EXP = 1767225600  # 2026-01-01T00:00:00Z

OTHER_VAULT_NAME = "kv-someone-else"
OTHER_VAULT_RESOURCE_ID = f"{RESOURCE_GROUP_ID}/providers/Microsoft.KeyVault/vaults/{OTHER_VAULT_NAME}"

ROLE_ASSIGNMENT_NAME = "3f2b8c1e-5d4a-4e6f-9b7c-1a2d3e4f5a6b"


def key_arm_id(key_name: str, vault_resource_id: str = VAULT_RESOURCE_ID) -> str:
    return f"{vault_resource_id}/keys/{key_name}"


def assignment_id(scope: str, name: str = ROLE_ASSIGNMENT_NAME) -> str:
    return f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"


def key_vault_data(
    *,
    object_type: str = "Key",
    collection: str = "keys",
    name: str = AKS_KEY,
    version: str = VERSION,
    vault_name: str = VAULT_NAME,
    vault_url: str = VAULT_URL,
) -> dict[str, Any]:
    """`data` of a Key Vault object event, PascalCase as in the current schema, NBF/EXP as numbers."""
    return {
        "Id": f"{vault_url}/{collection}/{name}/{version}",
        "VaultName": vault_name,
        "ObjectType": object_type,
        "ObjectName": name,
        "Version": version,
        "NBF": NBF,
        "EXP": EXP,
    }


def event_grid_key_event(
    event_type: str = "Microsoft.KeyVault.KeyNewVersionCreated",
    *,
    name: str = AKS_KEY,
    version: str = VERSION,
    data: dict[str, Any] | None = None,
    topic: str = VAULT_RESOURCE_ID,
) -> dict[str, Any]:
    return {
        "id": "0a4d3b5c-8e2f-4f61-9a7b-2c3d4e5f6a7b",
        "topic": topic,
        "subject": name,
        "eventType": event_type,
        "eventTime": "2025-11-03T08:15:42.4717305Z",
        "data": data if data is not None else key_vault_data(name=name, version=version),
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def cloud_event_key_event(
    event_type: str = "Microsoft.KeyVault.KeyNewVersionCreated",
    *,
    name: str = AKS_KEY,
    version: str = VERSION,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "5e6f7a8b-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
        "source": VAULT_RESOURCE_ID,
        "subject": name,
        "type": event_type,
        "time": "2025-11-03T08:15:42.4717305Z",
        "data": data if data is not None else key_vault_data(name=name, version=version),
        "specversion": "1.0",
    }


def published_sample_quirks(event_type: str = "Microsoft.KeyVault.KeyNearExpiry") -> dict[str, Any]:
    """The quirks of Microsoft's published Key Vault sample: `"ObjectName "`, `" <version>"`, NBF/EXP as strings."""
    return {
        "id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
        "topic": VAULT_RESOURCE_ID,
        "subject": MYSQL_KEY,
        "eventType": event_type,
        "eventTime": "2025-07-25T01:08:33.1036736Z",
        "data": {
            "Id": f"{VAULT_URL}/keys/{MYSQL_KEY}/{VERSION}",
            "VaultName": VAULT_NAME,
            "ObjectType": "Key",
            "ObjectName ": MYSQL_KEY,
            "Version": f" {VERSION}",
            "NBF": str(NBF),
            "EXP": str(EXP),
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def older_camel_case_key_event(event_type: str = "Microsoft.KeyVault.KeyExpired") -> dict[str, Any]:
    """The older data schema: camelCase names (`id`, `vaultName`, `nbf`)."""
    return {
        "id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "topic": VAULT_RESOURCE_ID,
        "subject": AKS_KEY,
        "eventType": event_type,
        "eventTime": "2025-11-03T08:15:42Z",
        "data": {
            "id": f"{VAULT_URL}/keys/{AKS_KEY}/{VERSION}",
            "vaultName": VAULT_NAME,
            "objectType": "Key",
            "objectName": AKS_KEY,
            "version": VERSION,
            "nbf": NBF,
            "exp": EXP,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def vault_access_policy_changed(*, vault_name: str = VAULT_NAME, vault_url: str = VAULT_URL) -> dict[str, Any]:
    """As published: `Id` is the vault URL, the object is the vault itself, NBF/EXP null."""
    return {
        "id": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        "topic": f"{RESOURCE_GROUP_ID}/providers/Microsoft.KeyVault/vaults/{vault_name}",
        "subject": vault_name,
        "eventType": "Microsoft.KeyVault.VaultAccessPolicyChanged",
        "eventTime": "2025-11-03T09:00:00.0000000Z",
        "data": {
            "Id": vault_url,
            "VaultName": vault_name,
            "ObjectType": "Vault",
            "ObjectName": vault_name,
            "Version": "",
            "NBF": None,
            "EXP": None,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def arm_event(
    *,
    resource_uri: str,
    operation_name: str = "Microsoft.Authorization/roleAssignments/write",
    event_type: str = "Microsoft.Resources.ResourceWriteSuccess",
) -> dict[str, Any]:
    """A resource group system topic event, shaped like the published ResourceWriteSuccess sample."""
    return {
        "id": "4f5a6b7c-8d9e-4f0a-9b1c-2d3e4f5a6b7c",
        "topic": RESOURCE_GROUP_ID,
        "subject": resource_uri,
        "eventType": event_type,
        "eventTime": "2025-11-03T10:21:07.2841731Z",
        "data": {
            "authorization": {
                "scope": resource_uri,
                "action": operation_name,
                "evidence": {
                    "role": "Owner",
                    "roleAssignmentScope": SUBSCRIPTION_ID,
                    "roleAssignmentId": "8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b",
                    "roleDefinitionId": "8e3af657a8ff443ca75c2fe8c4bcb635",
                    "principalId": "1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d",
                    "principalType": "User",
                },
            },
            "claims": {
                "aud": "https://management.core.windows.net/",
                "iss": "https://sts.windows.net/11111111-1111-1111-1111-111111111111/",
                "name": "Platform Operator",
            },
            "correlationId": "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e",
            "httpRequest": {
                "clientRequestId": "7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f",
                "clientIpAddress": "203.0.113.10",
                "method": "PUT" if operation_name.endswith("/write") else "DELETE",
                "url": f"https://management.azure.com{resource_uri}?api-version=2022-04-01",
            },
            "operationName": operation_name,
            "resourceProvider": "Microsoft.Authorization",
            "resourceUri": resource_uri,
            "status": "Succeeded",
            "subscriptionId": SUBSCRIPTION,
            "tenantId": "11111111-1111-1111-1111-111111111111",
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def role_assignment_event(scope: str, operation: str = "write") -> dict[str, Any]:
    event_type = (
        "Microsoft.Resources.ResourceWriteSuccess"
        if operation == "write"
        else ("Microsoft.Resources.ResourceDeleteSuccess")
    )
    return arm_event(
        resource_uri=assignment_id(scope),
        operation_name=f"Microsoft.Authorization/roleAssignments/{operation}",
        event_type=event_type,
    )


def subscription_validation(code: str = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6") -> dict[str, Any]:
    return {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": f"{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.EventGrid/topics/cmk-events",
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": f"https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/cmk/validate?id={code}",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2025-11-03T07:00:00.0000000Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
