"""The app as a Flex Consumption deployment runs it, over the wire: identity-only storage and operators signed in.

Storage: no AzureWebJobsStorage connection string anywhere. Azurite serves HTTPS and accepts only what Azure Storage
accepts from an identity (bearer tokens, `--oauth basic`); the app and the devhost reach it through
`AzureWebJobsStorage__credential=managedidentity`, `__clientId` and the service URIs, the app's token coming from the
emulators' managed-identity endpoint. A rotation's alert must reach the Event Grid topic (the alert outbox is a
queue) and its re-wrap must fan out (re-wrap pages are queue messages, the DEK registry a table) (M4).

Operators: not the local run (no CMK_LOCAL_RUN), App Service authentication on (WEBSITE_AUTH_ENABLED=true); the test
writes X-MS-CLIENT-PRINCIPAL as Easy Auth would. A caller whose display name or preferred_username equals the
operator's entry is refused (403) and audited (H1); a request with no signed-in caller is refused (M3); a caller
holding the operator app role is allowed."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, fresh_system, topic_events, wait_until

pytestmark = pytest.mark.e2e

MYSQL = "mysql-encryption-key"
DEKS = 12
OPERATOR_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STRANGER_ID = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
ROLE_HOLDER_ID = "8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def principal(object_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
    """X-MS-CLIENT-PRINCIPAL as App Service authentication writes it (base64 JSON of the caller's claims)."""
    claims = [{"typ": OID, "val": object_id}, {"typ": "name", "val": name}, {"typ": "preferred_username", "val": name}]
    claims += [{"typ": "roles", "val": role} for role in roles]
    document = {"auth_typ": "aad", "name_typ": "preferred_username", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    local = fresh_system(
        tmp_path_factory.mktemp("deployed"),
        CMK_LOCAL_RUN="false",
        WEBSITE_AUTH_ENABLED="true",
        CMK_OPERATORS=OPERATOR_ID,
    )
    local.storage = "identity"
    with local:
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})  # short consumer moves, as elsewhere
        yield local


@pytest.fixture(scope="module")
def wire(deployed: LocalSystem) -> Wire:
    return Wire(deployed)


def identity_table(system: LocalSystem, name: str):
    """The app's table adapter on the run's Azurite, authenticated as the app's identity (no account key)."""
    from shared.azure.tables import LazyTable, table_client

    credential = system.cloud.credential(system.cloud.identities.app)
    endpoint = system.storage_endpoints["table"]
    return LazyTable(
        table_client(name, service_uri=endpoint, credential=credential, connection_verify=system.cloud.ca_cert)
    )


def test_the_app_gets_no_connection_string_and_azurite_refuses_an_unauthenticated_request(deployed):
    import requests

    settings = deployed.app_settings()
    assert "AzureWebJobsStorage" not in settings
    assert (
        settings["AzureWebJobsStorage__credential"] == "managedidentity" and settings["AzureWebJobsStorage__clientId"]
    )
    anonymous = requests.get(
        f"{deployed.storage_endpoints['queue']}?comp=list", verify=deployed.cloud.ca_cert, timeout=10
    )
    assert anonymous.status_code in (401, 403), anonymous.text


def test_a_rotations_alert_reaches_the_topic_and_its_rewrap_fans_out_with_identity_only_storage(deployed, wire):
    from shared.azure.dekstore import TableDekStore
    from shared.envelope.deks import key_check_value
    from shared.envelope.sharding import shard_of
    from shared.model import WrappedDek

    inventory = deployed.cloud.inventory()
    managed = inventory.key(MYSQL)
    consumer = next(c for c in managed.consumers if c.kind.value == "dek-table")
    store = TableDekStore(identity_table(deployed, deployed.app_settings().get("CMK_DEK_TABLE") or "cmkdeks"))
    vault = deployed.cloud.keyvault(deployed.cloud.identities.app)
    try:
        current = vault.get_key(managed.ref)
        kept = {}
        for i in range(DEKS):
            dek, dek_id = os.urandom(32), f"identity-dek-{i:04d}"
            partition = shard_of(dek_id, consumer.options["partition_prefix"], consumer.options["shards"])
            wrapped = vault.wrap_key(managed.ref, current.version, dek)
            store.add(
                WrappedDek(partition, dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, key_check_value(dek))
            )
            kept[(partition, dek_id)] = dek

        answer = wire.post("/api/rotations", json={"key": MYSQL, "reason": "e2e: identity-only storage"})
        assert answer.status_code == 201, answer.text
        new_id = vault.get_key(managed.ref).key_id
        rotated = wait_until(lambda: topic_events(deployed, "CmkGuardian.Key.Rotated", MYSQL), what="the Rotated alert")
        assert rotated[0]["data"]["old_version"] == current.version
        wait_until(lambda: topic_events(deployed, "CmkGuardian.Rewrap.Completed", MYSQL), what="the re-wrap completed")
        for (partition, dek_id), original in kept.items():
            entity = store.get(partition, dek_id)
            assert entity.key_id == new_id
            assert vault.unwrap_key(entity.key_id, entity.wrapped, entity.algorithm) == original
    finally:
        vault.close()


def _revoke(wire: Wire, headers: dict[str, str]):
    import requests

    body = {"key": MYSQL, "service": "mysql", "action": "revoke-access", "reason": "e2e: who may press"}
    sent = {"x-functions-key": wire.system.devhost["function_key"], **headers}
    return requests.post(f"{wire.url}/api/revocations", json=body, headers=sent, timeout=30)


def _refusals(wire: Wire) -> list[dict]:
    records = wire.get("/api/audit?limit=200").json()["records"]
    return [r for r in records if r["outcome"] == "refused" and r["action"] == "revocation-request"]


def test_names_are_no_credential_no_caller_is_refused_and_the_operator_role_is_allowed(wire):
    # H1: Mallory's display name and preferred_username are the operator's entry (and the role's name): refused.
    for name in (OPERATOR_ID, "CmkGuardian.Operator"):
        impostor = _revoke(wire, principal(STRANGER_ID, name))
        assert impostor.status_code == 403, impostor.text
    # M3: the function key alone, outside the local run, is no caller.
    anonymous = _revoke(wire, {})
    assert anonymous.status_code == 403, anonymous.text
    triggers = [r["trigger"] for r in _refusals(wire)]
    assert sum(STRANGER_ID in t for t in triggers) == 2 and "operator:function-key" in triggers

    # An Entra administrator assigned the app role: allowed (a dry run only plans), and recorded by object id.
    holder = _revoke(wire, principal(ROLE_HOLDER_ID, "Key Custodian", ("CmkGuardian.Operator",)))
    assert holder.status_code == 200, holder.text
    assert holder.json()["dry_run"] is True
    listed = _revoke(wire, principal(OPERATOR_ID, "Alice"))
    assert listed.status_code == 200, listed.text
    records = wire.get(f"/api/audit?key={MYSQL}&limit=50").json()["records"]
    planned = {r["trigger"] for r in records if r["action"] == "revocation-plan"}
    assert any(ROLE_HOLDER_ID in t for t in planned) and any(OPERATOR_ID in t for t in planned)
