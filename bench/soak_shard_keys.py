"""The soak's view of a key on shard keys (`bench/soak.py --shard-keys KEY`): its inventory line, its shard-key
table, and the invariants that change when DEKs hang off shard keys instead of KEK versions.

- a DEK row under a shard key must name a shard-key row that exists, whose KEK version is enabled;
- a KEK version may not be disabled while a shard key is wrapped by it (the retirement guard's rule);
- the re-wrap is finished only when every shard key is on the current version (the DEK counts alone say nothing).
"""

from __future__ import annotations

import re
from typing import Any

from shared.envelope import ShardKeyCache

SHARD_KEY_TTL_SECONDS = 300.0


def inventory_with_shard_keys(text: str, key: str, rotate_after: str | None = "P60D") -> str:
    """The inventory with `hierarchy: shard-keys` on `key`'s dek-table options, and its shard keys rotating every
    `rotate_after` (so the soak sees scheduled shard-key rotations as well as KEK rotations)."""
    start = text.index(f"- name: {key}\n")
    end = text.find("\n  - name: ", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    match = re.search(r"\n( +)partition_prefix: [^\n]*", block)
    if match is None:
        raise ValueError(f"{key} has no dek-table partition_prefix in the inventory")
    indent = match.group(1)
    added = f"\n{indent}hierarchy: shard-keys" + (
        f"\n{indent}shard_key_rotate_after: {rotate_after}" if rotate_after else ""
    )
    changed = block[: match.end()] + added + block[match.end() :]
    return text[:start] + changed + text[end:]


class ShardKeyView:
    """The shard-key table the devhost writes, read with the app's adapter, and the application's cache."""

    def __init__(self, key: str | None, table_name: str, connection: str) -> None:
        from shared.azure.shardkeys import TableShardKeyStore
        from shared.azure.tables import LazyTable, table_client

        self.key = key
        self.store = TableShardKeyStore(LazyTable(table_client(table_name, connection_string=connection)))
        self.cache = ShardKeyCache(SHARD_KEY_TTL_SECONDS)
        self._rows: dict[str, dict] = {}  # one registry check's reads of each key's shard keys
        self._refreshed: set[str] = set()

    def begin_check(self, inventory: Any) -> None:
        """A registry check starts: the shard keys are read once before the DEK rows, and once more after them only if
        a DEK names a generation the first read lacks. A generation a DEK row names existed when that row was read, so
        it is in one of the two reads (a rotation running meanwhile creates one and deletes another, never both within
        one check): a DEK is reported only when its generation is in neither."""
        self._rows, self._refreshed = {}, set()
        if self.key is not None:
            managed = inventory.key(self.key)
            self._rows[managed.name] = {(r.shard, r.generation): r for r in self.rows(managed)}

    def rows(self, managed: Any) -> list:
        if self.key is None or managed.name != self.key:
            return []
        prefix = next(c for c in managed.consumers if c.kind.value == "dek-table").options["partition_prefix"]
        return self.store.list_prefix(prefix)

    def behind(self, managed: Any, current_version: str) -> int:
        return sum(1 for row in self.rows(managed) if row.kek_version.lower() != current_version.lower())

    def versions_in_use(self, managed: Any) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.rows(managed):
            found[row.kek_version] = found.get(row.kek_version, 0) + 1
        return found

    def registry_problem(self, managed: Any, row_key_id: str, partition: str, enabled: dict[str, bool]) -> str | None:
        """Why a DEK row under a shard key is not safe (None when it is): its shard key is gone or on a disabled or
        unknown KEK version."""
        generation = int(row_key_id.rstrip("/").rsplit("/g", 1)[-1])
        known = self._rows.setdefault(managed.name, {})
        if (partition, generation) not in known and managed.name not in self._refreshed:
            self._refreshed.add(managed.name)
            try:
                known.update({(r.shard, r.generation): r for r in self.rows(managed)})
            except Exception as exc:
                return f"its shard keys are unreadable ({type(exc).__name__})"
        sk = known.get((partition, generation))
        if sk is None:
            return f"its shard key {partition}/g{generation} is gone"
        if not enabled.get(sk.kek_id.lower(), False):
            return f"its shard key {partition}/g{generation} is wrapped under a disabled or unknown {sk.kek_id}"
        return None
