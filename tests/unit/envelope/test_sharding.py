"""The shard of a DEK is part of its address: it must not change between processes, runs or Python versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.envelope.sharding import DEFAULT_SHARDS, all_shards, shard_count, shard_of
from shared.errors import InvalidInput


def test_shards_are_pinned_values_not_a_per_process_hash():
    assert shard_of("abc", "mysql-") == "mysql-010"
    assert shard_of("0f" * 16, "aks-") == "aks-015"
    assert shard_of("abc", "mysql-", 1000) == "mysql-074"
    other = subprocess.run(
        [sys.executable, "-c", "from shared.envelope.sharding import shard_of; print(shard_of('abc', 'mysql-'))"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert other.stdout.strip() == "mysql-010"


def test_every_shard_is_listed_and_ids_spread_over_them():
    shards = all_shards("mysql-")
    assert len(shards) == DEFAULT_SHARDS and shards[0] == "mysql-000" and shards[-1] == "mysql-015"
    used = {shard_of(f"dek-{i}", "mysql-") for i in range(400)}
    assert used == set(shards)


@pytest.mark.parametrize("value", [0, 1001, "many", True, None])
def test_a_bad_shard_count_is_refused_naming_the_option(value):
    with pytest.raises(InvalidInput) as exc:
        shard_count({"shards": value} if value is not None else {"shards": ""})
    assert exc.value.field == "shards"


def test_the_shard_count_defaults_to_16():
    assert shard_count({}) == shard_count(None) == 16
    assert shard_count({"shards": "4"}) == 4
