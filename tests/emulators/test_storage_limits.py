"""Azure Storage's size limits, as the local Azurite enforces them for the clients the app builds.

Probed against the Azurite in node_modules (these tests are the record): a queue message is refused over 64 KiB as
stored (413 RequestBodyTooLarge; the app stores base64 of its JSON, so 48 KiB of JSON at most); a table property is
refused over 64 KiB (a string over 32 Ki characters, since the service counts UTF-16; a binary over 64 KiB) with 400
PropertyValueTooLarge, and an entity over 1 MiB with 400 EntityTooLarge. Azurite enforces these, but measures an
entity as UTF-8 JSON where Azure counts strings as UTF-16: an entity of mostly ASCII text between about 512 KiB and
1 MiB passes Azurite and not Azure, so the adapters' table (shared.azure.table_limits) refuses it as Azure would. The
in-memory queue fake refuses what the queue refuses (tests/contract/test_outbound_contract.py: fake and adapter
agree).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient

from shared.azure.queue import StorageWorkQueue
from shared.azure.table_limits import MAX_ENTITY_BYTES, entity_size
from shared.azure.tables import LazyTable, table_client
from shared.errors import CmkError, InvalidInput
from tests.support.azurite import Azurite, start_azurite

KIB = 1024


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    running = start_azurite(tmp_path_factory.mktemp("azurite-limits"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    client = LazyTable(table_client(f"limits{uuid.uuid4().hex[:12]}", connection_string=azurite.connection_string))
    yield client.ensure()
    client.close()


def refused(table: TableClient, entity: dict) -> str:
    """The service's error code for an entity it refuses (400)."""
    with pytest.raises(HttpResponseError) as err:
        table.upsert_entity(entity)
    assert err.value.status_code == 400
    return str(getattr(err.value.error_code, "value", err.value.error_code))


def test_a_queue_message_over_64_kib_as_stored_is_refused_with_413(azurite: Azurite) -> None:
    queue = StorageWorkQueue(azurite.connection_string, f"limits-{uuid.uuid4().hex[:12]}")
    try:
        queue.send({"pad": "a" * (48 * KIB - 11)})  # 49152 bytes of JSON: 65536 of base64, the most there is
        with pytest.raises(CmkError) as err:
            queue.send({"pad": "a" * (48 * KIB - 10)})
        assert "RequestBodyTooLarge" in str(err.value)
    finally:
        queue.close()


def test_a_string_property_over_64_kib_is_refused(table: TableClient) -> None:
    table.upsert_entity({"PartitionKey": "p", "RowKey": "fits", "v": "a" * (32 * KIB)})  # 64 KiB as UTF-16
    over = {"PartitionKey": "p", "RowKey": "over", "v": "a" * (32 * KIB + 1)}
    assert refused(table, over) == "PropertyValueTooLarge"


def test_a_binary_property_over_64_kib_is_refused(table: TableClient) -> None:
    table.upsert_entity({"PartitionKey": "p", "RowKey": "fits", "v": b"a" * (64 * KIB)})
    over = {"PartitionKey": "p", "RowKey": "over", "v": b"a" * (64 * KIB + 1)}
    assert refused(table, over) == "PropertyValueTooLarge"


def test_azurite_refuses_an_entity_over_1_mib_of_utf8(azurite: Azurite) -> None:
    raw = table_client(f"limits{uuid.uuid4().hex[:12]}", connection_string=azurite.connection_string)
    raw.create_table()
    # 40 properties of 30 000 characters: each under the property limit, together 1.2 MB even as UTF-8.
    entity = {"PartitionKey": "p", "RowKey": "big", **{f"v{i}": "a" * 30_000 for i in range(40)}}
    assert refused(raw, entity) == "EntityTooLarge"
    raw.close()


def test_an_entity_azurite_accepts_but_azure_counts_over_1_mib_is_refused_on_the_adapters_path(
    azurite: Azurite,
) -> None:
    """Azurite measures UTF-8 JSON, Azure UTF-16: 17 properties of 32 Ki ASCII characters pass Azurite (544 KiB of
    UTF-8) but are 1088 KiB to Azure. The adapters' table (LazyTable) refuses them as Azure would."""

    def entity(properties: int) -> dict:
        padding = {f"v{i}": "a" * (32 * KIB) for i in range(properties)}
        return {"PartitionKey": "p", "RowKey": f"n{properties}", **padding}

    name = f"limits{uuid.uuid4().hex[:12]}"
    raw = table_client(name, connection_string=azurite.connection_string)
    raw.create_table()
    raw.upsert_entity(entity(17))  # Azurite itself lets it through
    assert entity_size(entity(17)) > MAX_ENTITY_BYTES >= entity_size(entity(15))

    table = LazyTable(table_client(name, connection_string=azurite.connection_string))
    table.ensure().upsert_entity(entity(15))
    for write in (table.ensure().create_entity, table.ensure().upsert_entity, table.ensure().update_entity):
        with pytest.raises(InvalidInput) as err:
            write(entity(17))
        assert "EntityTooLarge" in str(err.value) and name in err.value.field
    with pytest.raises(InvalidInput):
        table.ensure().submit_transaction([("upsert", entity(17))])
    table.close()
    raw.close()


def test_azures_entity_measure_counts_each_type_as_documented() -> None:
    base = 4 + 2 * len("pr")
    assert entity_size({"PartitionKey": "p", "RowKey": "r"}) == base
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "s": "ab"}) == base + 8 + 2 + 4 + 4
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "b": b"abc"}) == base + 8 + 2 + 3 + 4
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "n": 1, "f": True}) == base + (8 + 2 + 4) + (8 + 2 + 1)
    assert entity_size({"PartitionKey": "p", "RowKey": "r", "n": 2**40}) == base + 8 + 2 + 8
