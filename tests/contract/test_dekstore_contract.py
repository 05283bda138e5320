"""DEK registry semantics every backend must keep (Table Storage's): insert conflicts, ETag-guarded replace, paging.

Runs the in-memory fake and the Table Storage adapter on Azurite through the same assertions, plus what only the
adapter has: the stored entity's layout, read raw with a TableClient, is pinned.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator

import pytest

from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.model import KeyRef, WrappedDek
from tests.contract.conftest import STORAGE_MODES, identity_table
from tests.fakes.dekstore import FakeDekStore
from tests.support.azurite import start_azurite

KEY = KeyRef("https://kv.vault.azure.net", "mysql-encryption-key")
OTHER = KeyRef("https://kv.vault.azure.net", "aks-etcd-kek")
RACERS = 4


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-dekstore"))
    try:
        yield running
    finally:
        running.stop()


def _table_store(connection: str):
    from shared.azure.dekstore import TableDekStore
    from shared.azure.tables import LazyTable, table_client

    name = f"deks{uuid.uuid4().hex[:12]}"
    return TableDekStore(LazyTable(table_client(name, connection_string=connection)))


@pytest.fixture(params=STORAGE_MODES)
def store(request):
    if request.param == "fake":
        return FakeDekStore()
    if request.param == "azurite-identity":
        from shared.azure.dekstore import TableDekStore

        return TableDekStore(identity_table(request.getfixturevalue("azurite_oauth"), f"deks{uuid.uuid4().hex[:12]}"))
    return _table_store(request.getfixturevalue("azurite").connection_string)


def _dek(dek_id: str, version: str = "v1", partition: str = "p0", key: KeyRef = KEY) -> WrappedDek:
    return WrappedDek(partition, dek_id, key.version_id(version), "RSA-OAEP-256", b"\x01" * 256, "kcv-" + dek_id)


def test_add_then_get_carries_an_etag(store):
    stored = store.add(_dek("a"))
    assert stored.etag
    assert store.get("p0", "a") == stored
    with pytest.raises(Conflict):
        store.add(_dek("a"))
    with pytest.raises(NotFound):
        store.get("p0", "missing")


def test_replace_with_stale_etag_fails_and_changes_nothing(store):
    first = store.add(_dek("a"))
    moved = store.replace(
        dataclasses.replace(
            first,
            key_id=KEY.version_id("v2"),
            wrapped=b"\x02" * 256,
            previous_key_id=first.key_id,
            previous_wrapped=first.wrapped,
        )
    )
    assert moved.etag != first.etag
    assert store.get("p0", "a") == moved
    assert (moved.previous_key_id, moved.previous_wrapped) == (KEY.version_id("v1"), b"\x01" * 256)
    with pytest.raises(PreconditionFailed):
        store.replace(dataclasses.replace(first, key_id=KEY.version_id("v3")))
    assert store.get("p0", "a").key_id == KEY.version_id("v2")


def test_replace_of_a_missing_dek_is_not_found_and_creates_nothing(store):
    with pytest.raises(NotFound):
        store.replace(dataclasses.replace(_dek("ghost"), etag="W/\"datetime'2026-12-01T00%3A00%3A00Z'\""))
    with pytest.raises(NotFound):
        store.get("p0", "ghost")


def test_refuses_what_azure_would_not_hold(store):
    with pytest.raises(InvalidInput) as versionless:
        store.add(dataclasses.replace(_dek("a"), key_id=KEY.versionless_id))
    assert versionless.value.field == "key_id"
    with pytest.raises(InvalidInput) as half:
        store.add(dataclasses.replace(_dek("a"), previous_key_id=KEY.version_id("v0")))
    assert half.value.field == "previous_wrapped"
    with pytest.raises(InvalidInput) as no_etag:
        store.replace(_dek("a"))
    assert no_etag.value.field == "etag"


def test_paging_visits_every_dek_once(store):
    for i in range(7):
        store.add(_dek(f"d{i}"))
    store.add(_dek("other", partition="p1"))
    seen, token = [], None
    while True:
        page = store.list_page("p0", token, page_size=3)
        seen += [d.dek_id for d in page.items]
        token = page.continuation
        if token is None:
            break
    assert seen == [f"d{i}" for i in range(7)]  # key order, each once
    assert store.partitions() == ["p0", "p1"]


def test_a_made_up_continuation_is_refused_naming_it(store):
    store.add(_dek("a"))
    with pytest.raises(InvalidInput) as exc:
        store.list_page("p0", "d3", page_size=3)
    assert exc.value.field == "continuation"
    with pytest.raises(InvalidInput) as size:
        store.list_page("p0", None, page_size=0)
    assert size.value.field == "page_size"


def test_ids_with_characters_table_keys_forbid_round_trip(store):
    odd = _dek("tenant/a#1?x%", partition="mysql-007")
    stored = store.add(odd)
    assert store.get("mysql-007", "tenant/a#1?x%") == stored
    assert [d.dek_id for d in store.list_page("mysql-007").items] == ["tenant/a#1?x%"]


def test_count_by_key_id(store):
    store.add(_dek("a", "v1"))
    store.add(_dek("b", "v1"))
    store.add(_dek("c", "v2"))
    store.add(_dek("d", "v1", key=OTHER))
    assert store.count_by_key_id(KEY) == {KEY.version_id("v1"): 2, KEY.version_id("v2"): 1}
    assert store.count_by_key_id(KeyRef(KEY.vault_url, KEY.name.upper())) == store.count_by_key_id(KEY)
    assert store.count_by_key_id(KeyRef(KEY.vault_url, "nothing-here")) == {}


EQUIVALENT_VAULT_URLS = (
    "https://kv.vault.azure.net",
    "https://KV.Vault.Azure.NET:443/",
    "HTTPS://kv.privatelink.vaultcore.azure.net",
    "https://kv.privatelink.vaultcore.azure.net:443",
)


@pytest.mark.parametrize("written", EQUIVALENT_VAULT_URLS)
def test_count_by_key_id_sees_every_form_of_one_vault_url_as_one_key(store, written):
    """M6: DEKs written under one form of the vault URL are counted under any equivalent form (case, default port,
    private-link alias, trailing slash), per (vault, key name, version), keyed by the normalised versioned id."""
    key_then = KeyRef(written, KEY.name)
    store.add(_dek("a", "V1", key=key_then))
    store.add(_dek("b", "v1", key=KEY))
    store.add(_dek("c", "v2", key=key_then))
    store.add(_dek("d", "v1", key=KeyRef("https://kv2.vault.azure.net", KEY.name)))
    expected = {KEY.version_id("v1"): 2, KEY.version_id("v2"): 1}
    for asked in EQUIVALENT_VAULT_URLS:
        assert store.count_by_key_id(KeyRef(asked, KEY.name)) == expected, asked


def test_four_racing_replaces_of_one_dek_let_exactly_one_through(store):
    read = store.add(_dek("race"))
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = [""] * RACERS

    def run(i: int) -> None:
        barrier.wait()
        try:
            store.replace(dataclasses.replace(read, key_id=KEY.version_id(f"w{i}")))
            outcomes[i] = "won"
        except PreconditionFailed:
            outcomes[i] = "412"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["412"] * (RACERS - 1) + ["won"]
    winner = outcomes.index("won")
    assert store.get("p0", "race").key_id == KEY.version_id(f"w{winner}")


def test_the_stored_entity_layout_is_pinned(azurite):
    """Format 1, read raw: a change to this layout must be deliberate (a new Format number and a reader for 1)."""
    from azure.data.tables import TableClient

    store = _table_store(azurite.connection_string)
    first = store.add(_dek("tenant/1", partition="mysql-003"))
    store.replace(
        dataclasses.replace(
            first,
            key_id=KEY.version_id("V2abc"),
            wrapped=b"\x02" * 512,
            previous_key_id=first.key_id,
            previous_wrapped=first.wrapped,
        )
    )
    raw = TableClient.from_connection_string(azurite.connection_string, table_name=store._table.name)
    entity = raw.get_entity("mysql-003", "tenant%2F1")
    assert dict(entity) == {
        "PartitionKey": "mysql-003",
        "RowKey": "tenant%2F1",
        "Partition": "mysql-003",
        "DekId": "tenant/1",
        "KeyId": "https://kv.vault.azure.net/keys/mysql-encryption-key/V2abc",
        "KeyBase": "https://kv.vault.azure.net/keys/mysql-encryption-key",
        "KeyVersion": "V2abc",
        "Alg": "RSA-OAEP-256",
        "Wrapped": b"\x02" * 512,
        "Kcv": "kcv-tenant/1",
        "PreviousKeyId": "https://kv.vault.azure.net/keys/mysql-encryption-key/v1",
        "PreviousWrapped": b"\x01" * 256,
        "Format": 1,
    }
    assert isinstance(entity["Wrapped"], bytes)  # Edm.Binary, not a base64 string
