"""DEK registry semantics every backend must keep (Table Storage's): insert conflicts, ETag-guarded replace, paging.

Runs the in-memory fake today; the Table Storage adapter joins the parameter list with the re-wrap capability.
"""

from __future__ import annotations

import dataclasses

import pytest

from shared.errors import Conflict, NotFound, PreconditionFailed
from shared.model import KeyRef, WrappedDek
from tests.fakes.dekstore import FakeDekStore

KEY = KeyRef("https://kv.vault.azure.net", "mysql-encryption-key")


@pytest.fixture(params=["fake"])
def store(request):
    return FakeDekStore()


def _dek(dek_id: str, version: str = "v1", partition: str = "p0") -> WrappedDek:
    return WrappedDek(partition, dek_id, KEY.version_id(version), "RSA-OAEP-256", b"\x01" * 256, "kcv-" + dek_id)


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
    moved = store.replace(dataclasses.replace(first, key_id=KEY.version_id("v2")))
    assert moved.etag != first.etag
    with pytest.raises(PreconditionFailed):
        store.replace(dataclasses.replace(first, key_id=KEY.version_id("v3")))
    assert store.get("p0", "a").key_id == KEY.version_id("v2")


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
    assert sorted(seen) == [f"d{i}" for i in range(7)]
    assert store.partitions() == ["p0", "p1"]


def test_count_by_key_id(store):
    store.add(_dek("a", "v1"))
    store.add(_dek("b", "v1"))
    store.add(_dek("c", "v2"))
    assert store.count_by_key_id(KEY) == {KEY.version_id("v1"): 2, KEY.version_id("v2"): 1}
