"""A key imported from an on-premises HSM, over the wire: when it is due the app raises ImportDue and makes no
version; after an import through the SDK's own `KeyClient.import_key`, with Event Grid unsubscribed so that no event
announces it, the sweep alone moves the DEKs (re-wrap) and the disk encryption set to the imported version; a version
the vault then generates on the key is reported critical and nothing moves onto it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localrun.onprem_hsm import import_into, key_client, onprem_key
from localrun.system import LocalSystem
from shared import roles
from tests.e2e.conftest import Wire, fresh_system, topic_events, wait_until
from tests.e2e.test_rewrap_over_the_wire import Registry

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AKS = "aks-encryption-key"
CONTACT = "pki-team@example.org"
DEKS = 30


@pytest.fixture
def system(tmp_path) -> Iterator[LocalSystem]:
    data = yaml.safe_load((ROOT / "inventory" / "reference.yaml").read_text())
    for key in data["keys"]:
        if key["name"] == AKS:
            key.update(origin="imported", import_contact=CONTACT)
    inventory = tmp_path / "imported.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    local = fresh_system(tmp_path, inventory=inventory)
    with local:
        local.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 2})  # a DES key change: seconds, not minutes
        yield local


@pytest.fixture
def wire(system: LocalSystem) -> Wire:
    return Wire(system)


def sweep(wire: Wire) -> None:
    mark = wire.mark()
    assert wire.run_function("compliance_sweep").status_code == 202
    wire.wait_for_log(lambda t: "Executed 'Functions.compliance_sweep' (Succeeded" in t, after=mark, timeout=90)


def findings(wire: Wire, code: str) -> list[dict]:
    key = next(k for k in wire.keys()["keys"] if k["name"] == AKS)
    return [f for f in key["findings"] if f["code"] == code]


def des_key_url(system: LocalSystem) -> str:
    des = next(c.resource_id for c in system.cloud.inventory().key(AKS).consumers if c.resource_id)
    return system.cloud.get_resource(des)["properties"]["activeKey"]["keyUrl"]


def test_due_alerts_without_a_version_then_an_import_moves_everything_and_a_generated_version_is_critical(system, wire):
    registry = Registry(system)
    managed = registry.inventory.key(AKS)
    assert managed.imported
    registry.seed(AKS, DEKS)
    first = registry.vault.get_key(managed.ref)
    assert findings(wire, "KeyVersionGenerated") == []  # the seed imported its first version, tagged
    assert next(k for k in wire.keys()["keys"] if k["name"] == AKS)["origin"] == "imported"

    # Due: 151 days on the 180-day version is inside notify_before. An alert that says what to import, no version.
    system.cloud.admin("POST", "/clock", {"advance_iso": "P151D"})
    sweep(wire)
    [due] = wait_until(lambda: topic_events(system, "CmkGuardian.Key.ImportDue", AKS), what="the ImportDue alert")
    assert due["data"]["severity"] == "warning" and due["data"]["contact"] == CONTACT
    assert due["data"]["kty"] == "RSA-HSM" and due["data"]["size"] == managed.size and due["data"]["deadline"]
    assert [v.version for v in registry.vault.list_versions(managed.ref)] == [first.version]
    assert not [r for r in wire.get(f"/api/audit?key={AKS}").json()["records"] if r["action"] == "rotate"]

    # The operator imports the next version; nobody is subscribed to the vault's events: the sweep is the only driver.
    for subscription in system.cloud.admin("GET", "/eventgrid/subscriptions")["value"]:
        system.cloud.admin("DELETE", f"/eventgrid/subscriptions/{subscription['name']}")
    grant = system.cloud.assign(managed.scope, roles.CRYPTO_OFFICER, system.cloud.identities.operator, "User")
    system.cloud.let_rbac_propagate()
    client = key_client(system.cloud)
    try:
        imported = import_into(client, AKS, onprem_key(managed.size), ops=list(managed.ops))
    finally:
        client.close()
    system.cloud.revoke(grant)
    system.cloud.let_rbac_propagate()
    sweep(wire)
    wait_until(lambda: registry.on_version(AKS, imported.id), timeout=120, what="the DEKs on the imported version")
    assert registry.all_open()
    wait_until(lambda: des_key_url(system) == imported.id, timeout=120, what="the disk encryption set moved")
    records = wire.get(f"/api/audit?key={AKS}").json()["records"]
    started = [r["trigger"] for r in records if r["action"] == "rewrap" and r["outcome"] == "started"]
    assert started == ["timer:unannounced"]
    assert findings(wire, "KeyVersionGenerated") == []

    # The vault generates a version of the imported key (someone rotated it): critical, and nothing moves onto it.
    generated = registry.vault.rotate_key(managed.ref)
    [finding] = findings(wire, "KeyVersionGenerated")
    assert finding["severity"] == "critical" and finding["detail"]["version"] == generated.version
    sweep(wire)
    assert registry.on_version(AKS, imported.id) and des_key_url(system) == imported.id
