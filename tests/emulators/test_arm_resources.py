"""ARM emulator, generic resources: JSON merge patch, the MySQL flexible server and disk encryption set rules the
app's consumers depend on (driven through azure-core's ARM long-running-operation poller), and the Key Vault
VaultAccessPolicyChanged event.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RequestIdPolicy, RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.polling.arm_polling import ARMPolling

from tests.emulators.test_arm import RG, SUB, VAULT, ArmUnderTest, PrincipalCredential, running_arm

MYSQL = f"{RG}/providers/Microsoft.DBforMySQL/flexibleServers/orders-db"
DES = f"{RG}/providers/Microsoft.Compute/diskEncryptionSets/aks-des"
IDENTITY = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-db-id"
VAULT_URL = "https://kv-one.vault.azure.net"


def key_url(version: str | None = None, name: str = "mysql-cmk") -> str:
    return f"{VAULT_URL}/keys/{name}" + (f"/{version}" if version else "")


def new_version() -> str:
    return uuid.uuid4().hex


class Arm:
    """A raw ARM client on azure-core: bearer token, TLS to the emulator, ARM LRO polling for PATCH."""

    def __init__(self, running: ArmUnderTest) -> None:
        self.base = running.base_url
        self.client = PipelineClient(
            running.base_url,
            policies=[
                RequestIdPolicy(),
                BearerTokenCredentialPolicy(
                    PrincipalCredential(str(uuid.uuid4())), "https://management.azure.com/.default"
                ),
                RetryPolicy(retry_total=0),
            ],
            transport=RequestsTransport(connection_verify=running.cert),
        )

    def call(self, method: str, resource_id: str, body: Any = None, api: str = "2023-12-30") -> tuple[int, Any]:
        response = self.client.send_request(
            HttpRequest(method, f"{self.base}{resource_id}?api-version={api}", json=body)
        )
        return response.status_code, (response.json() if response.text() else None)

    def patch_and_wait(self, resource_id: str, body: Any) -> dict[str, Any]:
        request = HttpRequest("PATCH", f"{self.base}{resource_id}?api-version=2023-12-30", json=body)
        initial = self.client.send_request(request, _return_pipeline_response=True)
        assert initial.http_response.status_code == 202
        assert initial.http_response.headers["Azure-AsyncOperation"].startswith(self.base)
        poller = LROPoller(self.client, initial, lambda r: json.loads(r.http_response.text()), ARMPolling(0))
        return poller.result(timeout=10)


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmUnderTest]:
    """Key changes complete at once here: their timing is tests/emulators/test_long_running_operations.py's."""
    with running_arm(tmp_path) as running:
        running.state.operations.set_duration(0)
        yield running


def events_of(running: ArmUnderTest, event_type: str) -> list[dict[str, Any]]:
    return [e for e in running.grid.events() if e["eventType"] == event_type]


def test_generic_resource_put_get_merge_patch_delete(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    account = f"{RG}/providers/Microsoft.Storage/storageAccounts/deks"
    body = {"location": "westeurope", "properties": {"tier": "Hot", "nested": {"x": 1, "y": 2}}}
    status, created = raw.call("PUT", account, body)
    assert status == 201 and created["id"] == account and created["type"] == "Microsoft.Storage/storageAccounts"
    assert raw.call("PUT", account, body)[0] == 200

    status, patched = raw.call(
        "PATCH", account, {"tags": {"owner": "platform"}, "properties": {"nested": {"x": None, "z": 3}}}
    )
    assert status == 200
    assert patched["properties"]["nested"] == {"y": 2, "z": 3} and patched["properties"]["tier"] == "Hot"
    assert raw.call("GET", account)[1] == patched

    assert raw.call("DELETE", account)[0] == 200
    assert raw.call("DELETE", account)[0] == 204
    status, missing = raw.call("GET", account)
    assert status == 404 and missing["error"]["code"] == "ResourceNotFound"
    assert raw.call("PATCH", account, {"tags": {}})[0] == 404

    writes = [e for e in events_of(arm, "Microsoft.Resources.ResourceWriteSuccess") if e["subject"] == account]
    assert len(writes) == 3 and writes[0]["topic"] == RG
    assert writes[0]["data"]["operationName"] == "Microsoft.Storage/storageAccounts/write"
    assert [e["subject"] for e in events_of(arm, "Microsoft.Resources.ResourceDeleteSuccess")] == [account]


def mysql_body(version: str | None) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
        "properties": {
            "version": "8.0.21",
            "dataEncryption": {
                "type": "AzureKeyVault",
                "primaryKeyURI": key_url(version),
                "primaryUserAssignedIdentityId": IDENTITY,
            },
        },
    }


def test_mysql_needs_a_versioned_key_and_patches_as_a_long_running_operation(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    status, error = raw.call("PUT", MYSQL, mysql_body(None))
    assert status == 400 and "properties.dataEncryption.primaryKeyURI" in error["error"]["message"]
    v1, v2 = new_version(), new_version()
    assert raw.call("PUT", MYSQL, mysql_body(v1))[0] == 201

    updated = raw.patch_and_wait(MYSQL, {"properties": {"dataEncryption": {"primaryKeyURI": key_url(v2)}}})
    assert updated["properties"]["dataEncryption"]["primaryKeyURI"] == key_url(v2)
    assert updated["properties"]["dataEncryption"]["type"] == "AzureKeyVault"  # merge patch kept the rest
    assert raw.call("GET", MYSQL)[1]["properties"]["dataEncryption"]["primaryKeyURI"] == key_url(v2)

    versionless = {"properties": {"dataEncryption": {"primaryKeyURI": key_url()}}}
    status, error = raw.call("PATCH", MYSQL, versionless)
    assert status == 400 and "versioned" in error["error"]["message"]
    stranger = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other"
    status, error = raw.call(
        "PATCH", MYSQL, {"properties": {"dataEncryption": {"primaryUserAssignedIdentityId": stranger}}}
    )
    assert status == 400 and "userAssignedIdentities" in error["error"]["message"]
    assert raw.call("GET", MYSQL)[1]["properties"]["dataEncryption"]["primaryKeyURI"] == key_url(v2)  # unchanged


def des_body(url: str, auto_rotate: bool = False) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "activeKey": {"keyUrl": url, "sourceVault": {"id": VAULT}},
            "rotationToLatestKeyVersionEnabled": auto_rotate,
        },
    }


def test_disk_encryption_set_keeps_previous_keys_and_rotation_time(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    v1, v2 = key_url(new_version(), "aks-cmk"), key_url(new_version(), "aks-cmk")
    status, created = raw.call("PUT", DES, des_body(v1), api="2024-03-02")
    assert status == 201 and created["properties"]["previousKeys"] == []
    assert "lastKeyRotationTimestamp" not in created["properties"]

    arm.clock.advance(86400)
    updated = raw.patch_and_wait(
        DES, {"properties": {"activeKey": {"keyUrl": v2, "sourceVault": {"id": VAULT}}, "previousKeys": []}}
    )
    assert updated["properties"]["activeKey"]["keyUrl"] == v2
    assert updated["properties"]["previousKeys"] == [{"keyUrl": v1, "sourceVault": {"id": VAULT}}]
    rotated = dt.datetime.fromisoformat(updated["properties"]["lastKeyRotationTimestamp"].replace("Z", "+00:00"))
    assert abs((rotated - arm.clock.now()).total_seconds()) < 30  # the emulated clock, a day ahead
    assert (rotated - dt.datetime.now(dt.UTC)).total_seconds() > 86000

    same_key = raw.patch_and_wait(DES, {"tags": {"touched": "yes"}})
    assert len(same_key["properties"]["previousKeys"]) == 1  # no key change, no new previous key

    status, error = raw.call("PATCH", DES, {"properties": {"activeKey": {"keyUrl": key_url(None, "aks-cmk")}}})
    assert status == 400 and "properties.activeKey.keyUrl" in error["error"]["message"]
    auto = raw.patch_and_wait(
        DES,
        {"properties": {"rotationToLatestKeyVersionEnabled": True, "activeKey": {"keyUrl": key_url(None, "aks-cmk")}}},
    )
    assert auto["properties"]["rotationToLatestKeyVersionEnabled"] is True
    assert [k["keyUrl"] for k in auto["properties"]["previousKeys"]] == [v1, v2]


def test_vault_permission_model_and_access_policy_changes_raise_events(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    arm.state.register_vault(VAULT, vault_uri="https://127.0.0.1:8443/")
    status, vault = raw.call("GET", VAULT, api="2023-07-01")
    assert status == 200 and vault["properties"]["enableRbacAuthorization"] is True

    assert raw.call("PATCH", VAULT, {"tags": {"env": "test"}}, api="2023-07-01")[0] == 200
    assert events_of(arm, "Microsoft.KeyVault.VaultAccessPolicyChanged") == []

    assert raw.call("PATCH", VAULT, {"properties": {"enableRbacAuthorization": False}}, api="2023-07-01")[0] == 200
    [changed] = events_of(arm, "Microsoft.KeyVault.VaultAccessPolicyChanged")
    assert changed["topic"] == VAULT and changed["subject"] == "kv-one"
    assert changed["data"]["Id"] == "https://127.0.0.1:8443/" and changed["data"]["ObjectType"] == "Vault"
    assert changed["data"]["VaultName"] == "kv-one" and changed["data"]["ObjectName"] == "kv-one"

    tenant, object_id = str(uuid.uuid4()), str(uuid.uuid4())
    policy = {"tenantId": tenant, "objectId": object_id, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}
    status, added = raw.call(
        "PUT", f"{VAULT}/accessPolicies/add", {"properties": {"accessPolicies": [policy]}}, api="2023-07-01"
    )
    assert status == 200 and added["properties"]["accessPolicies"] == [policy]
    removal = {**policy, "permissions": {"keys": ["wrapKey", "unwrapKey"]}}
    raw.call("PUT", f"{VAULT}/accessPolicies/remove", {"properties": {"accessPolicies": [removal]}}, api="2023-07-01")
    stored = raw.call("GET", VAULT, api="2023-07-01")[1]["properties"]["accessPolicies"]
    assert stored == [{**policy, "permissions": {"keys": ["get"]}}]
    assert len(events_of(arm, "Microsoft.KeyVault.VaultAccessPolicyChanged")) == 3

    bad = {"properties": {"accessPolicies": [{**policy, "objectId": "bob"}]}}
    status, error = raw.call("PATCH", VAULT, bad, api="2023-07-01")
    assert status == 400 and "accessPolicies[0].objectId" in error["error"]["message"]


def test_missing_api_version_and_unknown_paths(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    response = raw.client.send_request(HttpRequest("GET", raw.base + MYSQL))
    assert response.status_code == 400 and response.json()["error"]["code"] == "MissingApiVersionParameter"
    assert raw.call("GET", f"/subscriptions/{SUB}/whatever")[0] == 404
    status, error = raw.call(
        "PUT", f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/A.B/c/d", {"location": "x"}
    )
    assert status == 404 and error["error"]["code"] == "SubscriptionNotFound"
