"""Queue triggers against Azurite: a base64 message is processed once and deleted; a message that always fails is
retried maxDequeueCount times and lands in <queue>-poison; a message that is not base64 goes to poison unrun."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from tests.devhost.conftest import MAX_DEQUEUE_COUNT, QUEUE
from tests.devhost.devhost_process import DevHost
from tests.support.azurite import Azurite


@pytest.fixture
def queue(azurite: Azurite, devhost: DevHost) -> Iterator[QueueClient]:
    """The trigger's queue, encoding like the Functions output binding (base64). Created here too: the devhost's
    poller may not have created it yet on a loaded machine, and a send to a missing queue is QueueNotFound."""
    client = QueueClient.from_connection_string(
        azurite.connection_string, QUEUE, message_encode_policy=TextBase64EncodePolicy()
    )
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    try:
        yield client
    finally:
        client.close()


def poison_contents(azurite: Azurite) -> list[str]:
    """What sits in the poison queue (nothing when the host has not had to create it yet)."""
    with QueueClient.from_connection_string(azurite.connection_string, f"{QUEUE}-poison") as poison:
        try:
            return [message.content for message in poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def wait_for_poison(azurite: Azurite, content: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while content not in poison_contents(azurite):
        assert time.monotonic() < deadline, f"{content!r} never reached {QUEUE}-poison"
        time.sleep(0.1)


def test_a_good_message_is_processed_once_and_deleted(devhost: DevHost, queue: QueueClient) -> None:
    body = f"hello-{uuid.uuid4()}"
    sent = queue.send_message(body)
    row = devhost.wait_for_records("work_items", lambda r: r["body"] == body, timeout=10)[0]
    assert row["cls"] == "azure.functions.queue.QueueMessage"
    assert row["id"] == sent.id
    assert row["dequeue_count"] == 1
    assert row["pop_receipt_present"] is True
    assert row["insertion_time"] is not None and row["expiration_time"] is not None
    time.sleep(1.5)  # longer than the retry delay: a second delivery would have happened by now
    assert len([r for r in devhost.records("work_items") if r["body"] == body]) == 1
    assert all(message.id != sent.id for message in queue.peek_messages(max_messages=32))


def test_a_failing_message_is_retried_then_poisoned(devhost: DevHost, azurite: Azurite, queue: QueueClient) -> None:
    body = f"fail-{uuid.uuid4()}"
    sent = queue.send_message(body)
    rows = devhost.wait_for_records("work_items", lambda r: r["body"] == body, count=MAX_DEQUEUE_COUNT, timeout=15)
    assert [row["dequeue_count"] for row in rows] == list(range(1, MAX_DEQUEUE_COUNT + 1))
    encoded = base64.b64encode(body.encode()).decode()
    wait_for_poison(azurite, encoded)
    assert all(message.id != sent.id for message in queue.peek_messages(max_messages=32))
    time.sleep(1.5)
    assert len([r for r in devhost.records("work_items") if r["body"] == body]) == MAX_DEQUEUE_COUNT
    devhost.wait_for_line(lambda line: "has reached MaxDequeueCount of 3" in line and f"'{QUEUE}-poison'" in line)


def test_a_message_that_is_not_base64_goes_to_poison_unrun(devhost: DevHost, azurite: Azurite) -> None:
    raw = f"plain text {uuid.uuid4()}!"
    with QueueClient.from_connection_string(azurite.connection_string, QUEUE) as plain:
        plain.send_message(raw)
    wait_for_poison(azurite, raw)
    assert not [r for r in devhost.records("work_items") if raw in r["body"]]
