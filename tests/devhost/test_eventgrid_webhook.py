"""The Event Grid webhook as Event Grid would call it: key, validation handshake (both kinds), notifications in the
Event Grid and CloudEvents schemas, redelivery-worthy 500, and the 4xx answers."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from tests.devhost.conftest import EVENTGRID_KEY, FUNCTION_KEY, MASTER_KEY
from tests.devhost.devhost_process import DevHost

VAULT = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"


def webhook(host: DevHost, *, function: str = "on_event", code: str | None = EVENTGRID_KEY) -> str:
    url = f"{host.url}/runtime/webhooks/eventgrid?functionName={function}"
    return f"{url}&code={code}" if code is not None else url


def post(host: DevHost, body: Any, *, event_type: str | None = "Notification", **kwargs: Any) -> requests.Response:
    headers = {"Content-Type": kwargs.pop("content_type", "application/json")}
    if event_type is not None:
        headers["aeg-event-type"] = event_type
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(webhook(host, **kwargs), data=data, headers=headers, timeout=10)


def grid_event(**data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": VAULT,
        "subject": "kv1/keys/orders",
        "eventType": "Microsoft.KeyVault.KeyNearExpiry",
        "eventTime": "2024-05-01T10:00:00.1234567Z",
        "data": {"VaultName": "kv1", "ObjectName": "orders", **data},
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def cloud_event(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": VAULT,
        "subject": "kv1/keys/orders",
        "type": "Microsoft.KeyVault.KeyNewVersionCreated",
        "time": "2024-05-02T11:30:00Z",
        "datacontenttype": "application/json",
        "data": {"VaultName": "kv1", "ObjectName": "orders", **data},
    }


def by_id(host: DevHost, event_id: str) -> dict[str, Any]:
    return host.wait_for_records("on_event", lambda row: row["id"] == event_id)[0]


def test_subscription_validation_is_answered_by_the_host(devhost: DevHost) -> None:
    before = len(devhost.records("on_event"))
    validation = [
        {
            "id": str(uuid.uuid4()),
            "topic": VAULT,
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2024-05-01T10:00:00Z",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x/y"},
            "dataVersion": "2",
        }
    ]
    response = post(devhost, validation, event_type="SubscriptionValidation")
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert len(devhost.records("on_event")) == before


def test_cloudevents_options_handshake(devhost: DevHost) -> None:
    response = requests.options(webhook(devhost), headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_event_grid_schema_arrives_as_eventgridevent_once_per_event(devhost: DevHost) -> None:
    first, second = grid_event(), grid_event(Version="abc")
    response = post(devhost, [first, second])
    assert response.status_code == 202
    seen = by_id(devhost, first["id"])
    assert seen == {
        "function": "on_event",
        "cls": "azure.functions._eventgrid.EventGridEvent",
        "id": first["id"],
        "subject": "kv1/keys/orders",
        "data": first["data"],
        "topic": VAULT,
        "event_type": "Microsoft.KeyVault.KeyNearExpiry",
        "event_time": "2024-05-01T10:00:00.123456+00:00",
        "data_version": "1",
    }
    assert by_id(devhost, second["id"])["data"]["Version"] == "abc"


def test_a_single_event_object_is_accepted(devhost: DevHost) -> None:
    event = grid_event()
    assert post(devhost, event).status_code == 202
    assert by_id(devhost, event["id"])["event_type"] == "Microsoft.KeyVault.KeyNearExpiry"


def test_cloudevents_arrive_with_their_fields(devhost: DevHost) -> None:
    """azure-functions 1.26 hands a CloudEvents body to the function as func.CloudEvent (source/type/time)."""
    single = cloud_event()
    assert post(devhost, single, content_type="application/cloudevents+json").status_code == 202
    seen = by_id(devhost, single["id"])
    assert seen["cls"] == "azure.functions._eventgrid.CloudEvent"
    assert (seen["source"], seen["type"], seen["time"]) == (
        VAULT,
        "Microsoft.KeyVault.KeyNewVersionCreated",
        "2024-05-02T11:30:00+00:00",
    )
    assert (seen["subject"], seen["data"], seen["specversion"]) == ("kv1/keys/orders", single["data"], "1.0")
    batch = [cloud_event(), cloud_event()]
    assert post(devhost, batch, content_type="application/cloudevents-batch+json").status_code == 202
    for event in batch:
        assert by_id(devhost, event["id"])["type"] == "Microsoft.KeyVault.KeyNewVersionCreated"


def test_a_failing_event_gives_500_and_the_others_still_run(devhost: DevHost) -> None:
    good, bad = grid_event(), grid_event(fail=True)
    response = post(devhost, [good, bad])
    assert response.status_code == 500
    assert by_id(devhost, good["id"])
    assert by_id(devhost, bad["id"])
    devhost.wait_for_line(lambda line: "ValueError: event asked to fail" in line)


def test_the_functions_own_logging_reaches_stdout(devhost: DevHost) -> None:
    event = grid_event()
    assert post(devhost, [event]).status_code == 202
    devhost.wait_for_line(lambda line: line.endswith(f"sample on_event got {event['id']}"))


def test_keys(devhost: DevHost) -> None:
    event = [grid_event()]
    assert post(devhost, event, code=None).status_code == 401
    assert post(devhost, event, code="wrong").status_code == 401
    assert post(devhost, event, code=FUNCTION_KEY).status_code == 401
    assert post(devhost, event, code=MASTER_KEY).status_code == 202


def test_unknown_function_gets_404(devhost: DevHost) -> None:
    assert post(devhost, [grid_event()], function="nope").status_code == 404
    assert post(devhost, [grid_event()], function="echo").status_code == 404  # not an Event Grid trigger


def test_missing_or_unknown_event_type_gets_400(devhost: DevHost) -> None:
    before = len(devhost.records("on_event"))
    assert post(devhost, [grid_event()], event_type=None).status_code == 400
    assert post(devhost, [grid_event()], event_type="Gossip").status_code == 400
    assert len(devhost.records("on_event")) == before


def test_malformed_bodies_get_400(devhost: DevHost) -> None:
    assert post(devhost, b"{not json").status_code == 400
    assert post(devhost, [1, 2]).status_code == 400
    assert post(devhost, []).status_code == 400
    assert post(devhost, [{"data": {}}], event_type="SubscriptionValidation").status_code == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "JSON null"),
        ("just text", "must be a JSON object, not str"),
        (7, "must be a JSON object, not int"),
        ({}, "not an Event Grid event: id, eventType, subject, eventTime missing"),
        ([grid_event(), None], "events[1]: must be a JSON object, not null"),
        ([{**grid_event(), "id": ""}], "events[0]: not an Event Grid event: id empty"),
        ({"specversion": "1.0", "id": "x", "source": VAULT}, "not a CloudEvent: type missing"),
    ],
    ids=["null", "string", "number", "empty-object", "null-in-batch", "empty-id", "cloudevent-without-type"],
)
def test_a_body_that_is_not_events_gets_400_with_the_reason_and_runs_nothing(devhost: DevHost, body, reason) -> None:
    before = len(devhost.records("on_event"))
    response = post(devhost, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]
    assert len(devhost.records("on_event")) == before


def test_a_handler_slower_than_event_grids_timeout_runs_again_on_the_redelivery(devhost: DevHost) -> None:
    """Event Grid stops waiting (30 s in Azure, 1 s here) and delivers again; the host finishes the first run all the
    same, so the function runs twice: what an Event Grid handler that waits on Azure must expect."""
    from emulators.core import MovableClock
    from emulators.eventgrid import EventGrid
    from tests.emulators.test_eventgrid import LoopThread, wait_for

    loop = LoopThread()
    grid = EventGrid(clock=MovableClock(), topic_key="k", topic_id=VAULT, retry_scale=0.01, delivery_timeout=1.0)
    try:
        loop.run(grid.start())
        grid.add_subscription({"name": "slow-handler", "endpoint": webhook(devhost)})
        record = grid.inject(
            topic=VAULT,
            event_type="Microsoft.KeyVault.KeyNearExpiry",
            subject="kv1/keys/orders",
            data={"VaultName": "kv1", "ObjectName": "orders", "sleep_once_seconds": 2},
        )
        runs = devhost.wait_for_records("on_event", lambda row: row["id"] == record["id"], count=2, timeout=20)
        assert len(runs) == 2
        wait_for(lambda: grid.stats()["deliveries"] == 2, timeout=10)
        assert grid.stats() == {"deliveries": 2, "timeouts": 1, "redeliveries_after_timeout": 1}
        assert [d["timed_out"] for d in grid.deliveries()] == [True, False]
    finally:
        loop.run(grid.stop())
        loop.close()
