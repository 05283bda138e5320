"""Revocation and break-glass restoration through the whole local system, as an operator presses the buttons.

Revoking the MySQL identity on its key makes Key Vault refuse that identity's unwrap (403, asked over HTTPS as the
identity itself) and the emulated MySQL server go Inaccessible, while the AKS identity and its disk encryption set
carry on; the alert reaches the topic, the ledger and the audit trail hold the revocation with its caller, an
enforcing sweep does not grant the access back, and a restoration makes the unwrap work and the server Ready again.
Disabling a key disables every version, so every registry DEK under it stops opening while the other key's DEKs
still open; restoring re-enables them. One fresh system (enforce mode, an operators' list) serves the scenarios;
the table of bad requests runs against the shared system (its audit mode does not matter to a refusal) and checks
that none of them changed the emulated cloud or the ledger."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import pytest
import requests

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, audit_records, fresh_system, let_rbac_propagate, topic_events, wait_until

pytestmark = pytest.mark.e2e

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
OPERATOR = "alice@contoso.example"
STRANGER = "mallory@contoso.example"
UNKNOWN_PRINCIPAL = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
NEVER_MADE = "0123456789abcdef0123456789abcdef"


def principal_header(name: str, object_id: str) -> dict[str, str]:
    """X-MS-CLIENT-PRINCIPAL as App Service authentication writes it: base64 JSON of the signed-in caller's claims."""
    document = {
        "auth_typ": "aad",
        "name_typ": "preferred_username",
        "claims": [
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id},
            {"typ": "preferred_username", "val": name},
        ],
    }
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


OPERATOR_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STRANGER_ID = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
AS_OPERATOR = principal_header(OPERATOR, OPERATOR_ID)
AS_STRANGER = principal_header(STRANGER, STRANGER_ID)
OPERATOR_CALLER = f"{OPERATOR} ({OPERATOR_ID})"  # authorized by object id; the name is the audit trail's label
STRANGER_CALLER = f"{STRANGER} ({STRANGER_ID})"


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """Enforce mode (the reference inventory's), with an operators' list, so a stranger's call is refused."""
    with fresh_system(tmp_path_factory.mktemp("revocation"), CMK_OPERATORS=OPERATOR_ID) as local:
        yield local


# ---- what the emulated cloud says -------------------------------------------------------------------------------
def unwrap_as(system: LocalSystem, principal: str, key_id: str, wrapped: bytes) -> requests.Response:
    """The vault's unwrapKey over HTTPS with the principal's own token, as its consumer would call it."""
    token = system.cloud.credential(principal).get_token("https://vault.azure.net/.default").token
    value = base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode()
    return requests.post(
        f"{key_id}/unwrapkey",
        params={"api-version": "7.4"},
        json={"alg": "RSA-OAEP-256", "value": value},
        headers={"Authorization": f"Bearer {token}"},
        verify=system.cloud.ca_cert,
        timeout=30,
    )


def opened(response: requests.Response) -> bytes:
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def wrap_under(system: LocalSystem, name: str) -> tuple[bytes, str, bytes]:
    """A fresh DEK wrapped under the key's current version (locally, from the public key): (plaintext, kid, wrapped)."""
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        ref = system.cloud.inventory().key(name).ref
        current = vault.get_key(ref)
        dek = os.urandom(32)
        wrapped = vault.wrap_key(ref, current.version, dek)
        return dek, wrapped.key_id, wrapped.wrapped
    finally:
        vault.close()


def key_use_at(system: LocalSystem, name: str, principal: str) -> list[str]:
    scope = system.cloud.inventory().key(name).scope
    access = system.cloud.access()
    try:
        listed = access.list_assignments(scope)
    finally:
        access.close()
    return sorted(a.id.lower() for a in listed if a.principal_id.lower() == principal.lower() and a.scope == scope)


def versions(system: LocalSystem, name: str) -> dict[str, bool]:
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        return {v.version: v.enabled for v in vault.list_versions(system.cloud.inventory().key(name).ref)}
    finally:
        vault.close()


def rotates(system: LocalSystem, name: str) -> bool:
    """Whether the key's rotation policy, as the vault reports it, has a Rotate action."""
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        policy = vault.get_rotation_policy(system.cloud.inventory().key(name).ref)
        return any(a.action.value == "Rotate" for a in (policy.actions if policy else ()))
    finally:
        vault.close()


def consumer(system: LocalSystem, name: str) -> str:
    return next(c.resource_id for c in system.cloud.inventory().key(name).consumers if c.resource_id)


def properties(system: LocalSystem, resource_id: str) -> dict:
    return system.cloud.get_resource(resource_id)["properties"]


def revocation(wire: Wire, revocation_id: str) -> dict:
    response = wire.get(f"/api/revocations/{revocation_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _post(wire: Wire, body: dict, headers: dict | None, path: str = "/api/revocations") -> requests.Response:
    sent = {"x-functions-key": wire.system.devhost["function_key"], **(headers or {})}
    return requests.post(f"{wire.url}{path}", json=body, headers=sent, timeout=30)


def restore(wire: Wire, revocation_id: str, headers: dict | None = None) -> requests.Response:
    body = {"revocation_id": revocation_id, "reason": "e2e: incident closed, give it back"}
    return _post(wire, body, headers, "/api/restorations")


def sweep(wire: Wire) -> None:
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)


# ---- the scenarios -----------------------------------------------------------------------------------------------
def test_revoking_the_mysql_identity_locks_out_its_server_only_until_a_restoration(operated):
    system, wire, ids = operated, Wire(operated), operated.cloud.identities
    server, disks = consumer(system, MYSQL), consumer(system, AKS)
    mysql_dek, mysql_kid, mysql_wrapped = wrap_under(system, MYSQL)
    aks_dek, aks_kid, aks_wrapped = wrap_under(system, AKS)
    assert opened(unwrap_as(system, ids.mysql, mysql_kid, mysql_wrapped)) == mysql_dek
    granted = key_use_at(system, MYSQL, ids.mysql)
    assert len(granted) == 1
    request = {"key": MYSQL, "service": "mysql", "action": "revoke-access", "reason": "e2e: suspected compromise"}

    # A stranger is refused before anything is read; a dry run only plans, on the record with its caller.
    refused = _post(wire, {**request, "dry_run": False}, AS_STRANGER)
    assert refused.status_code == 403, refused.text
    assert STRANGER in refused.json()["error"]["message"]
    impostor = _post(wire, {**request, "dry_run": False}, principal_header(OPERATOR, STRANGER_ID))  # H1: a name
    assert impostor.status_code == 403, impostor.text  # is anyone's to choose; the object id is what counts
    planned = _post(wire, request, AS_OPERATOR)
    assert planned.status_code == 200, planned.text
    plan = planned.json()["plan"]
    assert planned.json()["dry_run"] is True and plan["principal_id"] == ids.mysql.lower()
    assert [a["assignment_id"].lower() for a in plan["remove"]] == granted
    assert any(loss["who"] == server for loss in plan["losses"])
    assert key_use_at(system, MYSQL, ids.mysql) == granted

    executed = _post(wire, {**request, "dry_run": False}, AS_OPERATOR)
    assert executed.status_code == 202, executed.text
    revocation_id = executed.json()["id"]
    assert executed.headers["Location"] == f"/api/revocations/{revocation_id}"
    assert key_use_at(system, MYSQL, ids.mysql) == []

    # Once the removal has propagated (up to 10 emulated minutes), Key Vault refuses the identity itself; its server
    # goes Inaccessible; AKS carries on.
    let_rbac_propagate(system)
    denied = unwrap_as(system, ids.mysql, mysql_kid, mysql_wrapped)
    assert denied.status_code == 403, denied.text
    wait_until(lambda: properties(system, server).get("state") == "Inaccessible", what="the server to lose its key")
    assert opened(unwrap_as(system, ids.aks, aks_kid, aks_wrapped)) == aks_dek
    assert not properties(system, disks).get("autoKeyRotationError")

    # Verified after the propagation delay; alerted, in the ledger and on the audit trail with its caller.
    verified = wait_until(
        lambda: (r := revocation(wire, revocation_id))["state"] == "verified" and r, what="the revocation verified"
    )
    assert verified["requested_by"] == OPERATOR_CALLER and verified["principal_id"] == ids.mysql.lower()
    assert [e.lower() for e in verified["executed"]] == granted
    alerts = topic_events(system, "CmkGuardian.Revocation.AccessRevoked", MYSQL)
    assert [a["data"]["revocation_id"] for a in alerts] == [revocation_id]
    assert alerts[0]["data"]["requested_by"] == OPERATOR_CALLER
    assert wait_until(lambda: topic_events(system, "CmkGuardian.Revocation.Verified", MYSQL), what="verified alert")
    outcomes = {(r["action"], r["outcome"], r["trigger"]) for r in audit_records(wire, MYSQL)}
    assert {
        ("revocation-plan", "planned", f"operator:{OPERATOR_CALLER}"),
        ("revocation", "executed", f"operator:{OPERATOR_CALLER}"),
        ("revocation-check", "verified", f"follow-up:{revocation_id}"),
    } <= outcomes
    everyone = wire.get("/api/audit?limit=200").json()["records"]
    assert any(r["outcome"] == "refused" and r["trigger"] == f"operator:{STRANGER_CALLER}" for r in everyone)

    # The same request again answers with the first revocation; an enforcing sweep does not grant it back.
    again = _post(wire, {**request, "dry_run": False}, AS_OPERATOR)
    assert again.status_code == 200 and again.json()["id"] == revocation_id, again.text
    sweep(wire)
    assert key_use_at(system, MYSQL, ids.mysql) == []
    assert unwrap_as(system, ids.mysql, mysql_kid, mysql_wrapped).status_code == 403

    # Break-glass: the grant comes back as it was, the unwrap works and the server is Ready again.
    restored = restore(wire, revocation_id, AS_OPERATOR)
    assert restored.status_code == 202, restored.text
    assert key_use_at(system, MYSQL, ids.mysql) == granted
    let_rbac_propagate(system)
    assert opened(unwrap_as(system, ids.mysql, mysql_kid, mysql_wrapped)) == mysql_dek
    wait_until(lambda: properties(system, server).get("state") == "Ready", what="the server to recover")
    wait_until(
        lambda: (revocation(wire, revocation_id)["restoration"] or {}).get("verified_at"), what="restoration verified"
    )
    assert revocation(wire, revocation_id)["state"] == "restored"
    assert topic_events(system, "CmkGuardian.Revocation.AccessRestored", MYSQL)
    sweep(wire)  # the ledger no longer holds it: reconciliation manages the grant again, and keeps it
    assert key_use_at(system, MYSQL, ids.mysql) == granted


def test_disabling_a_key_shreds_its_registry_deks_only_and_a_restoration_re_enables_it(operated):
    system, wire = operated, Wire(operated)
    registry = Registry(system)
    registry.seed(AKS, 4)
    registry.seed(MYSQL, 2)
    before = versions(system, AKS)
    others = versions(system, MYSQL)
    assert all(before.values()) and registry.open_under(AKS) == 4
    request = {"key": AKS, "action": "disable-key", "reason": "e2e: crypto-shred drill"}

    planned = _post(wire, request, AS_OPERATOR)
    assert planned.status_code == 200, planned.text
    assert sorted(planned.json()["plan"]["disable"]) == sorted(before)
    assert planned.json()["plan"]["deks_unreadable"] == 4
    mismatch = _post(wire, {**request, "dry_run": False, "confirm": MYSQL}, AS_OPERATOR)
    assert mismatch.status_code == 422 and mismatch.json()["error"]["field"] == "confirm", mismatch.text
    assert versions(system, AKS) == before

    executed = _post(wire, {**request, "dry_run": False, "confirm": AKS}, AS_OPERATOR)
    assert executed.status_code == 202, executed.text
    revocation_id = executed.json()["id"]
    assert versions(system, AKS) == dict.fromkeys(before, False)
    assert registry.open_under(AKS) == 0 and registry.open_under(MYSQL) == 2
    assert versions(system, MYSQL) == others
    wait_until(lambda: properties(system, consumer(system, AKS)).get("autoKeyRotationError"), what="the DES to fail")
    assert properties(system, consumer(system, MYSQL)).get("state") == "Ready"
    wait_until(lambda: revocation(wire, revocation_id)["state"] == "verified", what="the shred verified")
    shredded = topic_events(system, "CmkGuardian.Revocation.KeyDisabled", AKS)
    assert [e["data"]["revocation_id"] for e in shredded] == [revocation_id]
    # Rotation must not bring a shredded key back with a fresh, enabled version: nor the vault's own (M7).
    assert not rotates(system, AKS)
    sweep(wire)
    assert versions(system, AKS) == dict.fromkeys(before, False) and not rotates(system, AKS)

    restored = restore(wire, revocation_id, AS_OPERATOR)
    assert restored.status_code == 202, restored.text
    assert versions(system, AKS) == before and rotates(system, AKS)
    assert registry.open_under(AKS) == 4
    wait_until(lambda: not properties(system, consumer(system, AKS)).get("autoKeyRotationError"), what="DES recovery")


class Registry:
    """DEKs of the app's registry in the run's Azurite, seeded here, with every plaintext kept to check."""

    def __init__(self, system: LocalSystem) -> None:
        from shared.azure.dekstore import TableDekStore
        from shared.azure.tables import LazyTable, table_client

        table = system.app_settings().get("CMK_DEK_TABLE") or "cmkdeks"
        self.system = system
        self.store = TableDekStore(LazyTable(table_client(table, connection_string=system.storage_connection)))
        self.kept: dict[tuple[str, str], tuple[str, bytes]] = {}

    def seed(self, name: str, count: int) -> None:
        from shared.envelope.deks import key_check_value
        from shared.envelope.sharding import shard_count, shard_of
        from shared.model import WrappedDek

        options = next(c for c in self.system.cloud.inventory().key(name).consumers if c.kind.value == "dek-table")
        for i in range(count):
            dek, kid, wrapped = wrap_under(self.system, name)
            dek_id = f"{name}-revocation-dek-{i:02d}"
            partition = shard_of(dek_id, options.options["partition_prefix"], shard_count(options.options))
            self.store.add(WrappedDek(partition, dek_id, kid, "RSA-OAEP-256", wrapped, key_check_value(dek)))
            self.kept[(partition, dek_id)] = (name, dek)

    def open_under(self, name: str) -> int:
        """How many of the key's seeded DEKs the app's identity can open now (each read back from the registry)."""
        count = 0
        for (partition, dek_id), (key, dek) in self.kept.items():
            if key != name:
                continue
            entity = self.store.get(partition, dek_id)
            response = unwrap_as(self.system, self.system.cloud.identities.app, entity.key_id, entity.wrapped)
            count += response.status_code == 200 and opened(response) == dek
        return count


# ---- the bad requests ------------------------------------------------------------------------------------------
EXECUTE = {"key": MYSQL, "service": "mysql", "action": "revoke-access", "reason": "e2e: bad request", "dry_run": False}
SHRED = {"key": MYSQL, "action": "disable-key", "reason": "e2e: bad request", "dry_run": False}
RESTORE = {"revocation_id": NEVER_MADE, "reason": "e2e: bad request"}
JSON = {"Content-Type": "application/json"}


def _except(body: dict, *names: str) -> dict:
    return {k: v for k, v in body.items() if k not in names}


# (path, raw body or JSON document, headers, status, field). Every one would change something if it were accepted.
BAD_REQUESTS = [
    ("/api/revocations", b'{"key": "mysql-encryption-key", ', JSON, 400, "body"),
    ("/api/revocations", b"[]", JSON, 400, "body"),
    ("/api/revocations", b"", JSON, 400, "body"),
    ("/api/revocations", {**EXECUTE, "reason": "x" * 4100}, None, 400, "body"),  # oversize: over 4096 bytes
    ("/api/revocations", json.dumps(EXECUTE).encode(), {"Content-Type": "text/plain"}, 415, "Content-Type"),
    ("/api/revocations", {**EXECUTE, "dry_run": "false"}, None, 400, "dry_run"),
    ("/api/revocations", {**EXECUTE, "reason": 7}, None, 400, "reason"),
    ("/api/revocations", _except(EXECUTE, "reason"), None, 400, "reason"),
    ("/api/revocations", {**EXECUTE, "reason": "line one\nforged: line two"}, None, 400, "reason"),
    ("/api/revocations", _except(EXECUTE, "action"), None, 400, "action"),
    ("/api/revocations", {**EXECUTE, "action": "delete-key"}, None, 400, "action"),
    ("/api/revocations", {**EXECUTE, "key": "no-such-key"}, None, 404, "key"),
    ("/api/revocations", {**EXECUTE, "key": "not a key name!"}, None, 400, "key"),
    ("/api/revocations", {**EXECUTE, "service": "postgres"}, None, 422, "service"),
    ("/api/revocations", {**_except(EXECUTE, "service"), "principal_id": UNKNOWN_PRINCIPAL}, None, 422, "principal_id"),
    ("/api/revocations", {**_except(EXECUTE, "service"), "principal_id": "mysql"}, None, 400, "principal_id"),
    ("/api/revocations", {**EXECUTE, "principal_id": UNKNOWN_PRINCIPAL}, None, 400, "principal_id"),  # and service
    ("/api/revocations", _except(EXECUTE, "service"), None, 400, "principal_id"),  # neither
    ("/api/revocations", {**EXECUTE, "force": True}, None, 400, "force"),
    ("/api/revocations", {**EXECUTE, "confirm": MYSQL}, None, 400, "confirm"),  # confirm is for disable-key
    ("/api/revocations", SHRED, None, 400, "confirm"),  # executing a shred without confirm
    ("/api/revocations", {**SHRED, "confirm": AKS}, None, 422, "confirm"),  # confirm names another key
    ("/api/revocations", {**SHRED, "confirm": MYSQL, "service": "mysql"}, None, 400, "service"),
    ("/api/revocations", b'{"key": "aks-encryption-key", "key": "mysql-encryption-key"}', JSON, 400, "key"),
    ("/api/restorations", RESTORE, None, 404, "revocation_id"),  # never revoked
    ("/api/restorations", {**RESTORE, "revocation_id": "../../etc"}, None, 400, "revocation_id"),
    ("/api/restorations", _except(RESTORE, "reason"), None, 400, "reason"),
    ("/api/restorations", {**RESTORE, "dry_run": False}, None, 400, "dry_run"),
]


def cloud_state(system: LocalSystem) -> dict:
    """What a bad request must not change: assignments at the vault and the keys, versions, consumers, ledger."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.azure.tables import table_client

    inventory = system.cloud.inventory()
    access = system.cloud.access()
    try:
        scopes = [system.cloud.vault_resource_id, *(k.scope for k in inventory.keys)]
        assignments = sorted(
            {(a.id.lower(), a.principal_id.lower()) for s in scopes for a in access.list_assignments(s)}
        )
    finally:
        access.close()
    consumers = {}
    for key in inventory.keys:
        for c in key.consumers:
            if c.resource_id:
                found = properties(system, c.resource_id)
                consumers[c.resource_id] = (found.get("state"), found.get("autoKeyRotationError"))
    table = system.app_settings().get("CMK_REVOCATIONS_TABLE") or "cmkrevocations"
    try:
        ledger = sorted(
            json.dumps(dict(e), sort_keys=True, default=str)
            for e in table_client(table, connection_string=system.storage_connection).list_entities()
        )
    except ResourceNotFoundError:
        ledger = []
    return {
        "assignments": assignments,
        "versions": {k.name: versions(system, k.name) for k in inventory.keys},
        "consumers": consumers,
        "ledger": ledger,
    }


CODES = {400: "InvalidField", 404: "NotFound", 415: "UnsupportedMediaType", 422: "Unprocessable"}


@pytest.mark.parametrize(("path", "body", "headers", "status", "field"), BAD_REQUESTS)
def test_a_bad_request_is_refused_naming_the_field_audited_and_changes_nothing(
    system, path, body, headers, status, field
):
    wire = Wire(system)
    before = cloud_state(system)
    sent = {"x-functions-key": system.devhost["function_key"], **(headers or {})}
    if isinstance(body, bytes):
        response = requests.post(f"{wire.url}{path}", data=body, headers=sent, timeout=30)
    else:
        response = requests.post(f"{wire.url}{path}", json=body, headers=sent, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (CODES[status], field) and error["message"], error
    refusal = next(r for r in wire.get("/api/audit?limit=20").json()["records"] if r["outcome"] == "refused")
    assert refusal["trigger"] == "operator:function-key" and refusal["detail"] == {
        "error": CODES[status],
        "field": field,
    }
    assert cloud_state(system) == before


def test_reading_a_revocation_that_was_never_made_names_the_id(system):
    wire = Wire(system)
    for path, status in ((f"/api/revocations/{NEVER_MADE}", 404), ("/api/revocations/NOT-AN-ID", 400)):
        response = wire.get(path)
        assert response.status_code == status and response.json()["error"]["field"] == "id", response.text
