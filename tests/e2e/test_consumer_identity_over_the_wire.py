"""The identity a consumer really uses, through the whole local system: the MySQL server's encryption moved to a
second user-assigned identity that holds the right grant (as an operator may do in Azure). The app reads that
identity from ARM: the reconcile and the sweep keep its grant, the server stays available, and GET /api/keys reports
the mismatch with the inventory as critical.

The local cloud runs on Azure's time: the new grant reaches Key Vault only after RBAC propagation, and the server's
move to the new identity is a long-running operation that fails if that identity cannot use the key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from shared import roles
from shared.model import ConsumerKind
from tests.e2e.conftest import Wire, fresh_system, let_rbac_propagate, topic_events, wait_until

pytestmark = pytest.mark.e2e

MYSQL = "mysql-encryption-key"
MYSQL_API = "2023-12-30"


@pytest.fixture
def enforcing(tmp_path) -> Iterator[LocalSystem]:
    with fresh_system(tmp_path) as local:
        yield local


def _listed(system: LocalSystem, scope: str) -> set[str]:
    access = system.cloud.access()
    try:
        return {a.id.lower() for a in access.list_assignments(scope)}
    finally:
        access.close()


def _server(system: LocalSystem, resource_id: str) -> dict:
    return system.cloud.get_resource(resource_id)


def test_a_server_moved_to_a_second_uami_keeps_its_grant_stays_available_and_is_a_critical_mismatch(enforcing):
    system, wire = enforcing, Wire(enforcing)
    cloud = system.cloud
    key = cloud.inventory().key(MYSQL)
    [server] = key.consumers_of(ConsumerKind.MYSQL_FLEXIBLE_SERVER)
    group = server.resource_id.split("/providers/")[0]
    uami = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mysql-second"
    second = str(uuid.uuid4())
    cloud.put_resource(
        uami, {"location": "westeurope", "properties": {"principalId": second, "tenantId": cloud.tenant_id}}
    )
    url = f"{cloud.arm_url}{server.resource_id}?api-version={MYSQL_API}"

    # As an operator does it in Azure: attach the second identity to the server, grant it the key, wait for RBAC to
    # propagate, then move the server's encryption to it (a move to an identity without access fails).
    cloud.request("PATCH", url, {"identity": {"userAssignedIdentities": {uami: {}}}}, token=True)
    cloud.admin("POST", "/clock", {"advance": 60})  # an identity change is a long-running operation too (40 s)
    wait_until(
        lambda: (
            uami.lower()
            in {i.lower() for i in _server(system, server.resource_id)["identity"]["userAssignedIdentities"]}
        ),
        what="the second identity attached to the server",
    )
    grant = cloud.assign(key.scope, roles.CRYPTO_SERVICE_ENCRYPTION_USER, second).lower()
    # The grant's event makes the app reconcile the key: it keeps the grant (the identity is attached to the server
    # and may be moved to) and reports it.
    [violation] = wait_until(lambda: topic_events(system, "CmkGuardian.Access.Violation", MYSQL), what="the reconcile")
    assert any(second in step and "attached to" in step for step in violation["data"]["steps"]), violation
    assert grant in _listed(system, key.scope)
    let_rbac_propagate(system)

    cloud.request("PATCH", url, {"properties": {"dataEncryption": {"primaryUserAssignedIdentityId": uami}}}, token=True)
    cloud.admin("POST", "/clock", {"advance": 60})  # the long-running change completes (40 emulated s)
    wait_until(
        lambda: (
            _server(system, server.resource_id)["properties"]["dataEncryption"]["primaryUserAssignedIdentityId"].lower()
            == uami.lower()
        ),
        what="the server to use the second identity",
    )

    # The reconcile (from a new role-assignment event: none; so the sweep) and the sweep keep the grant: it is the
    # identity the server really uses; the server stays available; the mismatch with the inventory is critical.
    sweep(wire)
    cloud.admin("POST", "/clock", {"advance": 601})  # past RBAC's propagation: the consumers check their keys again
    sweep(wire)
    assert grant in _listed(system, key.scope)
    state = _server(system, server.resource_id)["properties"].get("state")
    assert str(state).lower() != "inaccessible", state
    history = cloud.admin("GET", "/consumers")["consumers"]
    [mine] = [h for rid, h in history.items() if rid.lower() == server.resource_id.lower()]
    assert mine["unavailable_checks"] == 0, mine
    findings = {f["code"]: f for k in wire.keys()["keys"] if k["name"] == MYSQL for f in k["findings"]}
    mismatch = findings["ConsumerIdentityMismatch"]
    assert mismatch["severity"] == "critical" and second in mismatch["message"]
    assert "ConsumerInaccessible" not in findings


def sweep(wire: Wire) -> None:
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=60)
