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
