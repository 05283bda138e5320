"""The app as a user runs it: devhost serving function_app.py, the unchanged SDKs talking to the emulators, Azurite.

Every assertion goes through a real wire: HTTP to the devhost, HTTPS from the app to Key Vault and ARM, Event Grid
webhook deliveries, Azure Storage queues."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid

import pytest
import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from localrun.system import LocalSystem, Ports
from shared import roles
from shared.alerts import ALERT_QUEUE, alert_to_message
from shared.model import Alert, Severity
from tests.e2e.conftest import FAST_QUEUES, Wire, write_host_json

pytestmark = pytest.mark.e2e


def test_keys_report_the_emulated_keys_and_their_findings(system: LocalSystem, wire: Wire):
    body = wire.keys()
    assert body["summary"] == {"keys": 2, "compliant": 2, "findings": {}}
    by_name = {k["name"]: k for k in body["keys"]}
    assert set(by_name) == {"aks-encryption-key", "mysql-encryption-key"}
    for key in by_name.values():
        assert key["key_id"].startswith(system.cloud.vault_url + "/keys/")
        assert (key["kty"], key["size"], sorted(key["ops"])) == ("RSA-HSM", 2048, ["unwrapKey", "wrapKey"])
    assert by_name["aks-encryption-key"]["rotation_policy"]["expires_in"] == "P180D"
    assert by_name["aks-encryption-key"]["expires"] is not None
    # A MySQL flexible server goes Inaccessible when its key expires: its key and policy carry no expiry.
    assert by_name["mysql-encryption-key"]["rotation_policy"]["expires_in"] is None
    assert by_name["mysql-encryption-key"]["expires"] is None

    # Drift made over the wire (ARM) shows up over the wire (the app reads ARM and Key Vault itself).
    inventory = system.cloud.inventory()
    stranger = str(uuid.uuid4())
    assignment = system.cloud.assign(inventory.key("mysql-encryption-key").scope, roles.CRYPTO_USER, stranger)
    try:
        findings = [f for k in wire.keys()["keys"] for f in k["findings"]]
        assert [(f["key"], f["code"], f["detail"]["principal_id"]) for f in findings] == [
            ("mysql-encryption-key", "AccessExtra", stranger)
        ]
    finally:
        system.cloud.revoke(assignment)
    assert wire.keys()["summary"]["compliant"] == 2


def test_control_plane_roles_are_not_key_use_and_a_group_grant_is_named(system: LocalSystem, wire: Wire):
    """Over the wire: the app reads each role's definition from ARM (as its own managed identity) and judges it."""
    inventory = system.cloud.inventory()
    subscription = f"/subscriptions/{inventory.vaults[0].subscription_id}"
    group = str(uuid.uuid4())
    made = [
        system.cloud.assign(subscription, role, str(uuid.uuid4()))
        for role in (roles.OWNER, roles.CONTRIBUTOR, roles.ARM_READER, roles.USER_ACCESS_ADMINISTRATOR)
    ]
    made.append(system.cloud.assign(inventory.key("aks-encryption-key").scope, roles.CRYPTO_USER, group, "Group"))
    try:
        findings = [f for k in wire.keys()["keys"] for f in k["findings"]]
        assert [(f["key"], f["code"], f["detail"]["principal_id"]) for f in findings] == [
            ("aks-encryption-key", "AccessViaGroup", group)
        ]
    finally:
        for assignment in made:
            system.cloud.revoke(assignment)


@pytest.mark.parametrize("key", [None, "wrong"], ids=["missing-key", "wrong-key"])
def test_function_key_is_enforced(wire: Wire, key):
    headers = {"x-functions-key": "not-the-key"} if key else {}
    response = requests.get(f"{wire.url}/api/keys", headers=headers, timeout=10)
    assert response.status_code == 401
    assert requests.get(f"{wire.url}/api/keys?code=not-the-key", timeout=10).status_code == 401


def test_a_key_vault_event_reaches_the_function(system: LocalSystem, wire: Wire):
    """New version in the emulated vault -> Event Grid -> webhook -> keyvault_events, logged with type and key."""
    mark = wire.mark()
    inventory = system.cloud.inventory()
    vault = system.cloud.keyvault(system.cloud.identities.app)  # the app's identity holds Crypto Officer
    try:
        new = vault.rotate_key(inventory.key("aks-encryption-key").ref)
    finally:
        vault.close()
    line = wire.wait_for_log(
        lambda text: "keyvault_events:" in text and "KeyNewVersionCreated" in text and new.version in text,
        after=mark,
    )
    assert "aks-encryption-key" in line
    wire.wait_for_log(lambda text: "Executed 'Functions.keyvault_events' (Succeeded" in text, after=mark)


def test_a_role_assignment_event_reaches_the_function(system: LocalSystem, wire: Wire):
    mark = wire.mark()
    inventory = system.cloud.inventory()
    assignment = system.cloud.assign(inventory.key("aks-encryption-key").scope, roles.READER, str(uuid.uuid4()))
    system.cloud.revoke(assignment)
    write = wire.wait_for_log(lambda t: "role_assignment_events:" in t and "ResourceWriteSuccess" in t, after=mark)
    delete = wire.wait_for_log(lambda t: "role_assignment_events:" in t and "ResourceDeleteSuccess" in t, after=mark)
    assert "aks-encryption-key" in write and "aks-encryption-key" in delete


def test_timer_runs_on_schedule_and_on_demand(wire: Wire):
    mark = wire.mark()
    wire.wait_for_log(lambda t: "Executing 'Functions.compliance_sweep' (Reason='Timer fired" in t, after=mark)
    wire.wait_for_log(lambda t: "compliance_sweep: {" in t, after=mark)

    mark = wire.mark()
    response = wire.run_function("compliance_sweep")
    assert response.status_code == 202
    line = wire.wait_for_log(
        lambda t: "Executing 'Functions.compliance_sweep'" in t and "programmatically" in t, after=mark
    )
    invocation = re.search(r"Id=([0-9a-f-]{36})", line).group(1)
    wire.wait_for_log(lambda t: f"Executed 'Functions.compliance_sweep' (Succeeded, Id={invocation}" in t, after=mark)
    assert wire.run_function("no_such_function").status_code == 404


def _queue(connection: str, name: str) -> QueueClient:
    return QueueClient.from_connection_string(
        connection, name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
    )


def test_an_alert_goes_through_the_outbox_to_the_topic(system: LocalSystem, wire: Wire):
    subject = f"/e2e/{uuid.uuid4()}"
    alert = Alert("CmkGuardian.E2E", subject, Severity.WARNING, "outbox round trip", {"n": 1})
    mark = wire.mark()
    queue = _queue(system.storage_connection, ALERT_QUEUE)
    with contextlib.suppress(ResourceExistsError):  # the host creates the queues it polls
        queue.create_queue()
    queue.send_message(json.dumps(alert_to_message(alert)))
    wire.wait_for_log(lambda t: "deliver_alerts: published" in t and subject in t, after=mark)
    received = system.cloud.admin("GET", "/eventgrid/topic-events")["value"]
    event = next(e for e in received if e.get("subject") == subject)
    assert event["type"] == "CmkGuardian.E2E" and event["source"] == "/cmk-guardian"
    assert event["data"] == {"severity": "warning", "message": "outbox round trip", "n": 1}


def test_a_message_that_keeps_failing_lands_in_the_poison_queue(tmp_path):
    """With the alert topic refusing the app (wrong key), delivery fails every time: retried, then poisoned."""
    host_json = write_host_json(tmp_path / "host.json", FAST_QUEUES)
    with LocalSystem(
        tmp_path / "state", ports=Ports.free(), extra_settings={"CMK_ALERT_TOPIC_KEY": "wrong"}, host_json=host_json
    ) as broken:
        wire = Wire(broken)
        mark = wire.mark()
        message = alert_to_message(Alert("CmkGuardian.E2E", "/poison", Severity.HIGH, "never delivered"))
        queue = _queue(broken.storage_connection, ALERT_QUEUE)
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        queue.send_message(json.dumps(message))
        poison = _queue(broken.storage_connection, f"{ALERT_QUEUE}-poison")
        deadline = time.monotonic() + 60
        landed = []
        while time.monotonic() < deadline and not landed:
            with contextlib.suppress(ResourceNotFoundError):  # it exists once the first message is poisoned
                landed = list(poison.peek_messages(max_messages=5))
            time.sleep(0.5)
        assert [json.loads(m.content) for m in landed] == [message]
        failures = [
            t for t in broken.devhost_child().lines[mark:] if "Executed 'Functions.deliver_alerts' (Failed" in t
        ]
        assert len(failures) == FAST_QUEUES["maxDequeueCount"]
        assert list(queue.peek_messages()) == []
