"""The soak's shard-key option (bench/soak_shard_keys.py): the inventory it writes puts exactly the chosen key on
shard keys and still loads; the bench's rotation figures hold their acceptance on a small run."""

from __future__ import annotations

import pytest

from bench.soak_shard_keys import inventory_with_shard_keys
from shared.inventory import parse_inventory
from tests.unit.conftest import ROOT


def _load(text: str):
    import yaml

    return parse_inventory(yaml.safe_load(text), source="soak.yaml")


def test_the_soak_inventory_puts_only_the_chosen_key_on_shard_keys():
    text = (ROOT / "inventory" / "reference.yaml").read_text()
    inventory = _load(inventory_with_shard_keys(text, "aks-encryption-key"))
    options = {k.name: c.options for k in inventory.keys for c in k.consumers if c.kind.value == "dek-table"}
    assert options["aks-encryption-key"]["hierarchy"] == "shard-keys"
    assert options["aks-encryption-key"]["shard_key_rotate_after"] == "P60D"
    assert "hierarchy" not in options["mysql-encryption-key"]
    with pytest.raises(ValueError):
        inventory_with_shard_keys(text, "no-such-key")


def test_the_rotation_bench_costs_one_unwrap_per_shard_and_no_dek_row():
    from bench.shard_keys import rotation_costs

    summary = rotation_costs(deks=300, shards=4)
    assert summary["shard_keys"]["kv_unwraps"] == 4 and summary["acceptance_unwraps_at_most_shards"]
    assert summary["shard_keys"]["dek_rows_read"] == summary["shard_keys"]["dek_rows_written"] == 0
    assert summary["flat"]["kv_unwraps"] == 300 and summary["flat"]["dek_rows_written"] == 300
    assert summary["flat"]["completed"] and summary["shard_keys"]["completed"]


def test_the_registry_check_reads_shard_keys_before_and_if_needed_after_the_dek_rows():
    import dataclasses

    from bench.soak_shard_keys import ShardKeyView
    from shared.envelope import ShardKeyCache
    from shared.inventory import load_inventory
    from shared.model import ShardKey
    from tests.fakes.shardkeys import FakeShardKeyStore

    inventory = load_inventory(ROOT / "inventory" / "reference.yaml", {})
    managed = inventory.key("aks-encryption-key")
    kek = managed.ref.version_id("v1")
    view = object.__new__(ShardKeyView)
    view.key, view.store, view.cache, view._rows, view._refreshed = (
        managed.name,
        FakeShardKeyStore(),
        ShardKeyCache(1),
        {},
        set(),
    )
    g1 = view.store.add(ShardKey("aks-000", 1, kek, "RSA-OAEP-256", b"w", "k"))
    view.begin_check(inventory)  # sees g1 only
    view.store.add(dataclasses.replace(g1, generation=2, etag=None))  # a rotation makes g2 ...
    view.store.delete(g1)  # ... moves the DEKs and deletes g1, while the DEK rows are read
    enabled = {kek.lower(): True}
    assert view.registry_problem(managed, f"{kek}/shards/aks-000/g1", "aks-000", enabled) is None  # read before
    assert view.registry_problem(managed, f"{kek}/shards/aks-000/g2", "aks-000", enabled) is None  # read after
    assert "is gone" in view.registry_problem(managed, f"{kek}/shards/aks-000/g3", "aks-000", enabled)
    assert "disabled or unknown" in view.registry_problem(managed, f"{kek}/shards/aks-000/g2", "aks-000", {})
