"""Envelope encryption through the real adapters: the seed command fills a Table Storage registry (Azurite) under
the emulated vault's current version, and the DEKs it made open remotely (unwrap as the app) to the same bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from shared.envelope import cli as envelope_cli
from shared.envelope import deks as envelope
from shared.envelope.sharding import all_shards
from tests.support.azurite import start_azurite
from tests.support.deployment import Deployment

COUNT = 120


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-envelope"))
    try:
        yield running
    finally:
        running.stop()


def test_seeded_deks_open_remotely_and_encrypt_round_trip(cloud_with_app_identity, azurite):
    from shared.azure.dekstore import TableDekStore
    from shared.azure.tables import LazyTable, table_client

    deployment = Deployment(cloud_with_app_identity)
    key = deployment.key("mysql-encryption-key")
    store = TableDekStore(LazyTable(table_client("cmkdeks", connection_string=azurite.connection_string)))
    ports = envelope_cli.Ports(deployment.inventory, deployment.vault, store, "cmkdeks")
    progress = io.StringIO()
    summary = envelope_cli.seed(ports, key.name, COUNT, workers=4, stderr=progress)

    current = deployment.vault.get_key(key.ref)
    assert (summary["created"], summary["failed"]) == (COUNT, 0)
    assert store.count_by_key_id(key.ref) == {key.ref.version_id(current.version): COUNT}
    assert set(store.partitions()) <= set(all_shards(f"{key.name}-"))
    assert f"{COUNT}/{COUNT} 100%" in progress.getvalue()

    for partition in store.partitions()[:3]:
        record = store.list_page(partition, page_size=1).items[0]
        with envelope.open_dek(partition, record.dek_id, vault=deployment.vault, store=store) as dek:
            blob = envelope.encrypt(dek, b"row data", b"row 1")
            assert envelope.decrypt(dek, blob, b"row 1") == b"row data"


def test_a_flipped_wrapped_byte_fails_the_remote_unwrap_and_yields_nothing(cloud_with_app_identity, azurite):
    import dataclasses

    from shared.azure.dekstore import TableDekStore
    from shared.azure.tables import LazyTable, table_client
    from shared.errors import UnwrapFailed

    deployment = Deployment(cloud_with_app_identity)
    key = deployment.key("mysql-encryption-key")
    store = TableDekStore(LazyTable(table_client("cmkdekstamper", connection_string=azurite.connection_string)))
    with envelope.create_dek(key, vault=deployment.vault, store=store, dek_id="victim") as dek:
        partition = dek.partition
    good = store.get(partition, "victim")
    flipped = bytearray(good.wrapped)
    flipped[3] ^= 0x01
    store.replace(dataclasses.replace(good, wrapped=bytes(flipped)))
    with pytest.raises(UnwrapFailed):
        envelope.open_dek(partition, "victim", vault=deployment.vault, store=store)
