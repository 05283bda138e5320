"""The outbound ports, fake and real: WorkQueue (Azure Storage queues on Azurite) and Alerts (Event Grid topic on the
emulator). Each backend brings a way to read back what was sent; the assertions are shared."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from shared.errors import CmkError, InvalidInput
from shared.model import Alert, Severity
from tests.contract.conftest import STORAGE_MODES, identity_queue
from tests.fakes.outbound import FakeAlerts, FakeWorkQueue
from tests.support.azurite import start_azurite


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-contract"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=STORAGE_MODES)
def queue_and_reader(request) -> tuple[object, Callable[[], list[dict]]]:
    if request.param == "fake":
        fake = FakeWorkQueue()
        return fake, fake.visible
    from shared.azure.queue import StorageWorkQueue

    name = f"contract-{uuid.uuid4().hex[:12]}"
    if request.param == "azurite-identity":
        oauth = request.getfixturevalue("azurite_oauth")
        queue = identity_queue(oauth, name)
        # read back with the account key: what the identity sent is what any other reader (the host) sees
        connection = oauth.connection_string
        reader = QueueClient.from_connection_string(
            connection, name, message_decode_policy=TextBase64DecodePolicy(), connection_verify=oauth.ca_cert
        )
    else:
        connection = request.getfixturevalue("azurite").connection_string
        queue = StorageWorkQueue(connection, name)
        reader = QueueClient.from_connection_string(connection, name, message_decode_policy=TextBase64DecodePolicy())

    def visible() -> list[dict]:
        try:
            return [json.loads(m.content) for m in reader.peek_messages(max_messages=32)]
        except ResourceNotFoundError:  # nothing was ever sent: the adapter creates its queue on first send
            return []

    return queue, visible


def test_sent_messages_come_back_as_sent(queue_and_reader):
    queue, visible = queue_and_reader
    queue.send({"shard": "aks-00", "n": 1, "text": "ünïcode"})
    queue.send({"shard": "aks-01", "n": 2})
    assert visible() == [{"shard": "aks-00", "n": 1, "text": "ünïcode"}, {"shard": "aks-01", "n": 2}]


def test_a_delayed_message_is_not_visible_at_once(queue_and_reader):
    queue, visible = queue_and_reader
    queue.send({"later": True}, delay_seconds=60)
    assert visible() == []


@pytest.mark.parametrize(
    ("message", "delay", "field"),
    [
        (["not", "an", "object"], 0, "message"),
        ({"ok": 1}, -1, "delay_seconds"),
        ({"ok": 1}, 8 * 86400, "delay_seconds"),
    ],
)
def test_bad_sends_name_the_field_and_send_nothing(queue_and_reader, message, delay, field):
    queue, visible = queue_and_reader
    with pytest.raises(InvalidInput) as err:
        queue.send(message, delay_seconds=delay)
    assert err.value.field == field
    assert visible() == []


def test_a_message_over_the_queues_64_kib_is_refused_as_azure_refuses_it(queue_and_reader):
    """64 KiB as stored, and the adapter stores base64 of the JSON: 48 KiB of JSON is the most a message can carry."""
    queue, visible = queue_and_reader
    overhead = len(json.dumps({"text": ""}))
    queue.send({"text": "a" * (48 * 1024 - overhead)})  # exactly 64 KiB once encoded
    with pytest.raises(CmkError) as err:
        queue.send({"text": "a" * (48 * 1024 - overhead + 1)})
    assert "RequestBodyTooLarge" in str(err.value)
    assert len(visible()) == 1


@pytest.fixture(params=["fake", "eventgrid-emulator"])
def alerts_and_reader(request):
    if request.param == "fake":
        fake = FakeAlerts()
        return fake, lambda: [
            {
                "type": a.type,
                "subject": a.subject,
                "data": {"severity": a.severity.value, "message": a.message, **a.data},
            }
            for a in fake.published
        ]
    from shared.azure.alerts import EventGridAlerts

    emulators = request.getfixturevalue("cloud_with_app_identity").emulators
    before = len(emulators.admin("GET", "/eventgrid/topic-events")[1]["value"])

    def received() -> list[dict]:
        events = emulators.admin("GET", "/eventgrid/topic-events")[1]["value"][before:]
        return [{"type": e["type"], "subject": e["subject"], "data": e["data"]} for e in events]

    return EventGridAlerts(emulators.eventgrid_topic_url, key=emulators.eventgrid_topic_key), received


def test_an_alert_arrives_as_one_event_with_its_fields(alerts_and_reader):
    alerts, received = alerts_and_reader
    alerts.publish(Alert("CmkGuardian.Contract", "/keys/aks-encryption-key", Severity.CRITICAL, "look", {"n": 2}))
    assert received() == [
        {
            "type": "CmkGuardian.Contract",
            "subject": "/keys/aks-encryption-key",
            "data": {"severity": "critical", "message": "look", "n": 2},
        }
    ]


def test_a_message_above_64_kib_in_base64_is_refused_and_an_alert_never_is(queue_and_reader):
    """H5: the queue's limit counts the base64 of the JSON; the alert outbox stays far below it, whatever it is
    handed (here 200 findings' worth of data and a 40,000-character message)."""
    from shared.alerts import MAX_ALERT_JSON_BYTES, OutboxAlerts
    from shared.errors import CmkError

    queue, visible = queue_and_reader
    with pytest.raises(CmkError):
        queue.send({"blob": "x" * 50_000})  # 50 KB of JSON: about 67 KB in base64
    findings = [{"code": "AccessExtra", "key": f"k{i}", "message": "m" * 300} for i in range(200)]
    huge = Alert("CmkGuardian.Test", "/t", Severity.CRITICAL, "m" * 40_000, {"findings": findings, "key": "k"})
    OutboxAlerts(queue).publish(huge)
    [sent] = visible()
    assert len(json.dumps(sent).encode()) <= MAX_ALERT_JSON_BYTES and sent["data"]["truncated"] is True
