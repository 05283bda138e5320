"""Shard-key store semantics every backend must keep (Table Storage's): insert conflicts, ETag-guarded replace and
delete, generations oldest first, a key's shards in one range query that never strays into a neighbour's prefix.
The fake and the Table Storage adapter on Azurite run the same assertions; the stored layout is pinned."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import KeyRef, ShardKey
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.support.azurite import start_azurite

KEY = KeyRef("https://kv.vault.azure.net", "aks-etcd-kek")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-shardkeys"))
    try:
        yield running
    finally:
        running.stop()


def _table_store(connection: str):
    from shared.azure.shardkeys import TableShardKeyStore
    from shared.azure.tables import LazyTable, table_client

    return TableShardKeyStore(LazyTable(table_client(f"sk{uuid.uuid4().hex[:12]}", connection_string=connection)))


@pytest.fixture(params=["fake", "azurite"])
def store(request):
    if request.param == "fake":
        return FakeShardKeyStore()
    return _table_store(request.getfixturevalue("azurite").connection_string)


def _sk(shard: str = "aks-003", generation: int = 1, version: str = "v1") -> ShardKey:
    return ShardKey(shard, generation, KEY.version_id(version), "RSA-OAEP-256", b"\x02" * 256, "0123456789abcdef")


def _same(a: ShardKey, b: ShardKey) -> bool:
    strip = {"etag": None, "created": None}
    return dataclasses.replace(a, **strip) == dataclasses.replace(b, **strip)


def test_add_get_and_conflict(store):
    stored = store.add(_sk())
    assert stored.etag and _same(store.get("aks-003", 1), _sk())
    with pytest.raises(Conflict):
        store.add(_sk())
    with pytest.raises(NotFound):
        store.get("aks-003", 2)


def test_replace_is_etag_guarded(store):
    stored = store.add(_sk())
    moved = store.replace(dataclasses.replace(stored, kek_id=KEY.version_id("v2"), migrated=True))
    assert store.get("aks-003", 1).kek_version == "v2" and store.get("aks-003", 1).migrated
    with pytest.raises(PreconditionFailed):
        store.replace(dataclasses.replace(stored, kek_id=KEY.version_id("v3")))  # the stale ETag loses
    assert moved.etag != stored.etag


def test_delete_is_etag_guarded_and_idempotent(store):
    stored = store.add(_sk())
    newer = store.replace(stored)
    with pytest.raises(PreconditionFailed):
        store.delete(stored)
    store.delete(newer)
    store.delete(newer)  # gone already: no error
    assert store.list_shard("aks-003") == []


def test_generations_list_oldest_first_and_a_prefix_stays_in_its_shards(store):
    for shard, generation in [("aks-001", 2), ("aks-001", 1), ("aks-000", 1), ("aks-x000", 1), ("aks-0001", 1)]:
        store.add(_sk(shard, generation))
    store.add(_sk("ak000", 1))
    assert [sk.generation for sk in store.list_shard("aks-001")] == [1, 2]
    assert [(sk.shard, sk.generation) for sk in store.list_prefix("aks-")] == [
        ("aks-000", 1),
        ("aks-001", 1),
        ("aks-001", 2),
    ]


def test_bad_input_is_refused_naming_the_field(store):
    for bad, field in [
        (dataclasses.replace(_sk(), kek_id="https://kv.vault.azure.net/keys/aks-etcd-kek"), "kek_id"),
        (dataclasses.replace(_sk(), generation=0), "generation"),
        (dataclasses.replace(_sk(), wrapped=b""), "wrapped"),
        (dataclasses.replace(_sk(), shard=""), "shard"),
    ]:
        with pytest.raises(InvalidInput) as err:
            store.add(bad)
        assert err.value.field == field
    assert store.list_shard("aks-003") == []


def test_the_stored_layout_is_pinned(azurite):
    from azure.data.tables import TableClient

    store = _table_store(azurite.connection_string)
    when = datetime(2026, 12, 3, tzinfo=UTC)
    store.add(dataclasses.replace(_sk("aks-007", 3), created=when))
    raw = TableClient.from_connection_string(azurite.connection_string, store._table.name).get_entity(
        "aks-007", "000003"
    )
    assert {k: raw[k] for k in ("Shard", "Generation", "KekId", "KekVersion", "Alg", "Kcv", "Migrated", "Format")} == {
        "Shard": "aks-007",
        "Generation": 3,
        "KekId": KEY.version_id("v1"),
        "KekVersion": "v1",
        "Alg": "RSA-OAEP-256",
        "Kcv": "0123456789abcdef",
        "Migrated": False,
        "Format": 1,
    }
    assert bytes(raw["Wrapped"]) == b"\x02" * 256 and raw["Created"] == when


def test_the_kek_versions_creation_time_round_trips_and_old_rows_have_none(store):
    """kek_created lets a late re-wrap message decide "never backwards" without reading the key (issue 21); a row
    written before the field existed reads back None, and the worker then reads that version instead."""
    when = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    store.add(dataclasses.replace(_sk("aks-004"), kek_created=when))
    store.add(_sk("aks-005"))
    assert store.get("aks-004", 1).kek_created == when
    assert store.get("aks-005", 1).kek_created is None
    moved = store.replace(dataclasses.replace(store.get("aks-005", 1), kek_created=when))
    assert store.get("aks-005", 1).kek_created == when and moved.etag
