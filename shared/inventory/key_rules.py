"""The inventory's rules that span keys: a key name once per vault, an identity on one key only and never also a
break-glass principal or the app itself, an Azure resource consuming one key, DEK partitions that cannot overlap.

Each rule is what keeps one service's key out of another's hands, so each is reported on the later key, naming the
earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.arm_ids import is_guid, normalize_scope
from shared.inventory.model import ManagedKey, Principal
from shared.inventory.problems import Problems, shown
from shared.inventory.section import Section
from shared.model import ConsumerKind


class AcrossKeys:
    """Checks each key, as it is read, against the keys read before it."""

    def __init__(self, break_glass: list[Principal], app_identity: str | None) -> None:
        self._names: dict[tuple[str, str], str] = {}  # (vault, key) -> path of the first
        self._identities: dict[str, str] = {}  # principal id -> key name
        self._break_glass_ids = {p.principal_id for p in break_glass}
        self._app_identity = app_identity

    def check(self, section: Section, name: str | None) -> None:
        """The key's name and identity as written (even where the key is invalid otherwise, so a clash is still
        reported)."""
        data, path = section.data, section.path
        vault_name = data.get("vault").strip() if isinstance(data.get("vault"), str) else None
        if name and vault_name:
            slot = (vault_name.lower(), name.lower())
            if slot in self._names:
                section.problem(
                    "name", f"duplicate key name {shown(name)} in vault {shown(vault_name)} (also {self._names[slot]})"
                )
            else:
                self._names[slot] = path
        identity = data.get("identity")
        principal_id = identity.get("principal_id") if isinstance(identity, Mapping) else None
        if isinstance(principal_id, str) and is_guid(principal_id):
            principal_id = principal_id.strip().lower()
            where = "identity.principal_id"
            if principal_id in self._identities:
                section.problem(
                    where,
                    f"identity {principal_id} already uses key {self._identities[principal_id]!r}; "
                    "each identity may use exactly one key",
                )
            else:
                self._identities[principal_id] = name or path
            if principal_id in self._break_glass_ids:
                section.problem(where, f"{principal_id} is also a break-glass principal; keep the two apart")
            if self._app_identity and principal_id == self._app_identity:
                section.problem(where, f"{principal_id} is the app's own identity (app_identity), not a consumer")


def check_shared_consumers(problems: Problems, keys: list[tuple[str, ManagedKey]]) -> None:
    """An Azure resource holds one key, and two keys whose DEK partitions could start alike in one table would each
    claim the other's DEKs: both are reported on the later key."""
    resources: dict[str, str] = {}
    prefixes: list[tuple[str, str, str]] = []  # (table, prefix, key)
    for path, key in keys:
        for consumer in key.consumers:
            if consumer.kind is not ConsumerKind.DEK_TABLE:
                resource = normalize_scope(consumer.resource_id or "")
                if resource in resources:
                    problems.add(
                        f"{path}.consumers",
                        f"{consumer.kind.value} {consumer.resource_id} is already a consumer of key "
                        f"{resources[resource]!r}",
                    )
                resources.setdefault(resource, key.name)
                continue
            table, prefix = consumer.options["table"].lower(), consumer.options["partition_prefix"]
            for other_table, other_prefix, other_key in prefixes:
                overlap = prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
                if other_key != key.name and table == other_table and overlap:
                    problems.add(
                        f"{path}.consumers",
                        f"dek-table partition prefix {prefix!r} overlaps {other_prefix!r} of key {other_key!r} "
                        f"in table {consumer.options['table']!r}",
                    )
            prefixes.append((table, prefix, key.name))
