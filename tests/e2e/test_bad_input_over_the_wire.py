"""Bad input reaching the running app: rejected with a reason, logged, never a crash; a bad inventory is reported."""

from __future__ import annotations

import json

import pytest
import requests

from localrun.system import LocalSystem, Ports
from shared.alerts import ALERT_QUEUE
from tests.e2e.conftest import Wire

pytestmark = pytest.mark.e2e


def deliver(wire: Wire, function: str, events: list) -> requests.Response:
    """POST as Event Grid does to a function's webhook."""
    return requests.post(
        f"{wire.url}/runtime/webhooks/eventgrid",
        params={"functionName": function, "code": wire.system.devhost["eventgrid_key"]},
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
        data=json.dumps(events),
        timeout=30,
    )


def event(event_type: str, data: object, topic: str = "/subscriptions/x") -> dict:
    return {
        "id": f"e2e-{event_type}-{abs(hash(json.dumps(data)))}",
        "topic": topic,
        "subject": "aks-encryption-key",
        "eventType": event_type,
        "eventTime": "2026-11-29T00:00:00Z",
        "data": data,
        "dataVersion": "1",
        "metadataVersion": "1",
    }


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (event("Microsoft.KeyVault.KeyNearExpiry", {"Id": "not-a-url"}), "malformed"),
        (event("Microsoft.KeyVault.KeyNearExpiry", "just a string"), "malformed"),
        (event("Microsoft.KeyVault.SecretNearExpiry", {"Id": "https://kv.vault.azure.net/secrets/s/1"}), "not_ours"),
        (
            event(
                "Microsoft.KeyVault.KeyNewVersionCreated",
                {"Id": "https://elsewhere.vault.azure.net/keys/other-key/0123", "VaultName": "elsewhere"},
            ),
            "outside_inventory",
        ),
        (event("Contoso.Something.Happened", {}), "unknown_type"),
    ],
    ids=["bad-id", "data-not-object", "secret-event", "foreign-vault", "unknown-type"],
)
def test_rejected_events_are_logged_and_acknowledged(wire: Wire, sent, reason):
    mark = wire.mark()
    response = deliver(wire, "keyvault_events", [sent])
    assert response.status_code == 202  # handled: not redelivered for a day
    line = wire.wait_for_log(lambda t: "keyvault_events: rejected" in t and sent["id"] in t, after=mark)
    assert f"rejected {reason}" in line
    assert wire.keys()["summary"]["keys"] == 2  # and the app keeps serving


def test_a_bad_inventory_is_reported_and_events_are_left_for_redelivery(tmp_path):
    bad = tmp_path / "inventory.yaml"
    bad.write_text("mode: enforce\nkeys:\n  - name: k\n    size: 1024\n")
    with LocalSystem(tmp_path / "state", ports=Ports.free(), extra_settings={"CMK_INVENTORY_PATH": str(bad)}) as broken:
        wire = Wire(broken)
        response = wire.get("/api/keys")
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["code"] == "InvalidInventory"
        assert any("keys[k].size" in p for p in error["problems"])
        sent = event("Microsoft.KeyVault.KeyNearExpiry", {"Id": f"{broken.cloud.vault_url}/keys/k/0123"})
        assert deliver(wire, "keyvault_events", [sent]).status_code == 500  # Event Grid will retry


def test_a_malformed_alert_message_is_logged_and_dropped_not_retried(system: LocalSystem, wire: Wire):
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    queue = QueueClient.from_connection_string(
        system.storage_connection, ALERT_QUEUE, message_encode_policy=TextBase64EncodePolicy()
    )
    mark = wire.mark()
    sent = queue.send_message(json.dumps({"version": 1, "type": "x"}))
    line = wire.wait_for_log(lambda t: "deliver_alerts: dropped malformed message" in t and sent.id in t, after=mark)
    assert "subject" in line  # names the field that was wrong
    done = wire.wait_for_log(lambda t: "Executed 'Functions.deliver_alerts'" in t, after=mark)
    assert "(Succeeded" in done  # acknowledged: the host deletes it instead of retrying it into the poison queue
