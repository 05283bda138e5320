"""The reference deployment on an emulated Managed HSM (`scripts/run --hsm`), through the whole local system: no
events, local RBAC instead of ARM's, and the app keeps every guarantee. Rotation by the HSM's own policy reaches the
app only through the sweep, which re-wraps the registry's DEKs and moves both consumers; least privilege is enforced
on local RBAC (a stranger's Crypto User at /keys/<name> removed, the consumer kept); a revocation is verified (the
identity's own unwrap refused by the HSM, its server Inaccessible) and a restoration gives it all back."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator

import pytest
import requests

from localrun.system import LocalSystem, Ports
from shared import roles
from tests.e2e.conftest import FAST_QUEUES, NEVER, Wire, let_rbac_propagate, wait_until, write_host_json
from tests.e2e.test_revocation_over_the_wire import AS_OPERATOR, OPERATOR_ID, opened, restore, revocation
from tests.e2e.test_revocation_over_the_wire import _post as post_revocation

pytestmark = pytest.mark.e2e

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"
HSM_AUDIENCE = "https://managedhsm.azure.net/.default"


@pytest.fixture(scope="module")
def hsm_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    tmp = tmp_path_factory.mktemp("managed-hsm")
    local = LocalSystem(
        tmp / "run",
        ports=Ports.free(),
        extra_settings={"CMK_SWEEP_SCHEDULE": NEVER, "CMK_OPERATORS": OPERATOR_ID},
        host_json=write_host_json(tmp / "host.json", FAST_QUEUES),
        hsm=True,
    )
    with local:
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})  # consumer key changes: 2 s, not minutes
        yield local


@pytest.fixture
def wire(hsm_system: LocalSystem) -> Wire:
    return Wire(hsm_system)


def sweep(wire: Wire) -> None:
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=90)


def local_rbac_at(system: LocalSystem, name: str) -> dict[str, str]:
    """principal -> role GUID of the assignments at the key's own scope, read from the HSM's local RBAC."""
    key = system.cloud.inventory().key(name)
    access = system.cloud.access()
    try:
        return {a.principal_id.lower(): a.role_guid for a in access.list_assignments(key.scope) if a.scope == key.scope}
    finally:
        access.close()


def unwrap_as(system: LocalSystem, principal: str, key_id: str, wrapped: bytes) -> requests.Response:
    token = system.cloud.credential(principal).get_token(HSM_AUDIENCE).token
    value = base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode()
    return requests.post(
        f"{key_id}/unwrapkey",
        params={"api-version": "7.4"},
        json={"alg": "RSA-OAEP-256", "value": value},
        headers={"Authorization": f"Bearer {token}"},
        verify=system.cloud.ca_cert,
        timeout=30,
    )


def current_key_id(system: LocalSystem, name: str) -> str:
    vault = system.cloud.keyvault(system.cloud.identities.app)
    try:
        return vault.get_key(system.cloud.inventory().key(name).ref).key_id
    finally:
        vault.close()


def consumer_key(system: LocalSystem, name: str) -> tuple[str, str]:
    resource = next(c.resource_id for c in system.cloud.inventory().key(name).consumers if c.resource_id)
    props = system.cloud.get_resource(resource)["properties"]
    url = (props.get("dataEncryption") or {}).get("primaryKeyURI") or props["activeKey"]["keyUrl"]
    return resource, url


def test_the_deployment_starts_compliant_on_the_hsm_and_nothing_subscribes_to_it(hsm_system, wire):
    report = wire.keys()
    assert report["summary"]["keys"] == 2 and report["summary"]["compliant"] == 2, report
    codes = {f["code"] for k in report["keys"] for f in k["findings"]}
    assert codes == {"BreakGlassHsmRoleManager"}  # the HSM's security officer, named break-glass
    assert report["keys"][0]["key_id"].startswith(hsm_system.cloud.vault_url + "/keys/")
    subscriptions = hsm_system.cloud.admin("GET", "/eventgrid/subscriptions")["value"]
    assert "cmk-keyvault-events" not in {s["name"] for s in subscriptions}
    app = hsm_system.cloud.identities.app.lower()
    assert local_rbac_at(hsm_system, MYSQL)[hsm_system.cloud.identities.mysql.lower()] == (
        roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid
    )
    assert app not in local_rbac_at(hsm_system, MYSQL)  # the app's roles sit at /keys and /


def test_a_strangers_crypto_user_at_the_key_is_removed_by_the_sweep_and_the_consumer_kept(hsm_system, wire):
    cloud = hsm_system.cloud
    key = cloud.inventory().key(MYSQL)
    stranger = str(uuid.uuid4())
    cloud.assign(key.scope, roles.HSM_CRYPTO_USER, stranger)
    assert local_rbac_at(hsm_system, MYSQL)[stranger] == roles.HSM_CRYPTO_USER.guid
    sweep(wire)  # no event announces a local RBAC change: the sweep finds it
    held = local_rbac_at(hsm_system, MYSQL)
    assert stranger not in held and cloud.identities.mysql.lower() in held
    records = wire.get(f"/api/audit?key={MYSQL}").json()["records"]
    assert any(r["action"] == "access-remove" and r["outcome"] == "removed" for r in records)
    let_rbac_propagate(hsm_system)
    _, url = consumer_key(hsm_system, MYSQL)
    dek = os.urandom(32)
    vault = cloud.keyvault(cloud.identities.app)
    try:
        wrapped = vault.wrap_key(key.ref, url.rsplit("/", 1)[1], dek)
    finally:
        vault.close()
    assert opened(unwrap_as(hsm_system, cloud.identities.mysql, wrapped.key_id, wrapped.wrapped)) == dek
    assert unwrap_as(hsm_system, stranger, wrapped.key_id, wrapped.wrapped).status_code == 403


def test_the_hsms_own_rotation_reaches_deks_and_consumers_through_the_sweep_alone(hsm_system, wire):
    from tests.e2e.test_rewrap_over_the_wire import Registry

    registry = Registry(hsm_system)
    registry.seed(AKS, 12)
    before = {name: current_key_id(hsm_system, name) for name in (AKS, MYSQL)}
    mark = wire.mark()
    hsm_system.cloud.admin("POST", "/clock", {"advance_iso": "P91D"})  # past the HSM policy's P90D: it rotates
    after = {name: current_key_id(hsm_system, name) for name in (AKS, MYSQL)}
    assert all(after[n] != before[n] for n in after)
    assert not [line for line in hsm_system.devhost_child().lines[mark:] if "keyvault_events:" in line]  # no events

    def everything_moved() -> bool:
        sweep(wire)
        return (
            registry.on_version(AKS, after[AKS])
            and consumer_key(hsm_system, AKS)[1] == after[AKS]
            and consumer_key(hsm_system, MYSQL)[1] == after[MYSQL]
        )

    wait_until(everything_moved, timeout=180, what="DEKs and consumers on the HSM's new versions")
    assert registry.all_open()
    report = wire.keys()
    assert report["summary"]["compliant"] == 2, report


def test_a_revocation_on_local_rbac_is_verified_and_restored(hsm_system, wire):
    cloud, ids = hsm_system.cloud, hsm_system.cloud.identities
    resource, url = consumer_key(hsm_system, MYSQL)
    dek = os.urandom(32)
    vault = cloud.keyvault(ids.app)
    try:
        wrapped = vault.wrap_key(cloud.inventory().key(MYSQL).ref, url.rsplit("/", 1)[1], dek)
    finally:
        vault.close()
    assert opened(unwrap_as(hsm_system, ids.mysql, wrapped.key_id, wrapped.wrapped)) == dek
    request = {"key": MYSQL, "service": "mysql", "action": "revoke-access", "reason": "e2e: hsm drill"}
    executed = post_revocation(wire, {**request, "dry_run": False}, AS_OPERATOR)
    assert executed.status_code == 202, executed.text
    revocation_id = executed.json()["id"]
    assert ids.mysql.lower() not in local_rbac_at(hsm_system, MYSQL)
    let_rbac_propagate(hsm_system)
    assert unwrap_as(hsm_system, ids.mysql, wrapped.key_id, wrapped.wrapped).status_code == 403
    wait_until(lambda: cloud.get_resource(resource)["properties"].get("state") == "Inaccessible", what="server cut off")
    wait_until(lambda: revocation(wire, revocation_id)["state"] == "verified", what="the revocation verified")
    sweep(wire)  # an enforcing sweep does not grant a revoked identity back
    assert ids.mysql.lower() not in local_rbac_at(hsm_system, MYSQL)

    restored = restore(wire, revocation_id, AS_OPERATOR)
    assert restored.status_code == 202, restored.text
    assert local_rbac_at(hsm_system, MYSQL)[ids.mysql.lower()] == roles.HSM_CRYPTO_SERVICE_ENCRYPTION_USER.guid
    let_rbac_propagate(hsm_system)
    assert opened(unwrap_as(hsm_system, ids.mysql, wrapped.key_id, wrapped.wrapped)) == dek
    wait_until(lambda: cloud.get_resource(resource)["properties"].get("state") == "Ready", what="server back")
    wait_until(
        lambda: (revocation(wire, revocation_id)["restoration"] or {}).get("verified_at"), what="restoration verified"
    )
