"""What depends on a key: the app's own DEK table (a table and a partition prefix) or an Azure resource that holds
a versioned key URL (a MySQL flexible server, a disk encryption set).

Rotation and re-wrap act on these, so each must point at a resource of the kind it claims, and a DEK table's options
are checked as strictly as any field (a mistyped option would otherwise default silently).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from shared.envelope.shard_keys import HIERARCHIES, HIERARCHY_FLAT, HIERARCHY_SHARD_KEYS
from shared.envelope.sharding import shard_count
from shared.errors import InvalidInput
from shared.inventory.checks import arm_id_check, duration_check
from shared.inventory.model import Consumer
from shared.inventory.problems import shown
from shared.inventory.section import MISSING, Section, each_mapping
from shared.model import ConsumerKind

# ARM resource types an Azure consumer kind must point at.
CONSUMER_RESOURCE_TYPES: dict[ConsumerKind, str] = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: "Microsoft.DBforMySQL/flexibleServers",
    ConsumerKind.DISK_ENCRYPTION_SET: "Microsoft.Compute/diskEncryptionSets",
}
_CONSUMER_FIELDS = ("kind", "resource_id", "options")
_DEK_TABLE_OPTIONS = ("table", "partition_prefix", "shards", "hierarchy", "shard_key_rotate_after")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


def read_consumers(key: Section, key_name: str | None) -> tuple[Consumer, ...] | None:
    consumers: list[Consumer] = []
    ok = True
    for path, data in each_mapping(key, "consumers", required=False):
        if data is None:
            ok = False
            continue
        consumer = read_consumer(Section(data, path, key.problems, _CONSUMER_FIELDS), key_name)
        if consumer is None:
            ok = False
        elif consumer in consumers:
            key.problem("consumers", f"{consumer_label(consumer)} is listed twice")
            ok = False
        else:
            consumers.append(consumer)
    return tuple(consumers) if ok else None


def read_consumer(section: Section, key_name: str | None) -> Consumer | None:
    kind = section.choice("kind", ConsumerKind)
    if kind is None:
        return None
    options = section.mapping("options")
    if kind is ConsumerKind.DEK_TABLE:
        if section.raw("resource_id", required=False) is not MISSING:
            section.problem("resource_id", "a dek-table consumer has no resource id (it lives in the app's DEK store)")
            return None
        return read_dek_table(section, options, key_name)
    resource_id = section.text("resource_id", check=arm_id_check(CONSUMER_RESOURCE_TYPES[kind]))
    return None if resource_id is None else Consumer(kind, resource_id, options)


def read_dek_table(section: Section, options: dict[str, Any], key_name: str | None) -> Consumer | None:
    ok = True
    for name in options:
        if name not in _DEK_TABLE_OPTIONS:
            close = difflib.get_close_matches(name, _DEK_TABLE_OPTIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected {' or '.join(_DEK_TABLE_OPTIONS)}"
            section.problem(f"options.{name}", f"unknown option ({hint})")
            ok = False
    table = options.get("table")
    if not isinstance(table, str) or not table.strip():
        section.problem("options.table", "required option is missing (the DEK registry's table name)")
        ok = False
    elif not _TABLE_NAME.fullmatch(table.strip()):
        section.problem("options.table", f"not a valid table name ({shown(table)}): 3-63 letters/digits, letter first")
        ok = False
    prefix = options.get("partition_prefix", key_name)
    if not isinstance(prefix, str) or not prefix.strip() or re.search(r"[/\\#?\x00-\x1f\x7f]", prefix):
        section.problem("options.partition_prefix", f"not a valid partition prefix ({shown(prefix)})")
        ok = False
    try:
        shards = shard_count(options)
    except InvalidInput as exc:
        section.problem("options.shards", f"{exc.reason} ({shown(options.get('shards'))}); fixed once DEKs exist")
        ok = False
    hierarchy = options.get("hierarchy", HIERARCHY_FLAT)
    if hierarchy not in HIERARCHIES:
        section.problem("options.hierarchy", f"must be {' or '.join(HIERARCHIES)} ({shown(hierarchy)})")
        ok = False
    every = options.get("shard_key_rotate_after")
    if every is not None:
        problem = duration_check(every) if isinstance(every, str) else "must be an ISO-8601 duration"
        if problem:
            section.problem("options.shard_key_rotate_after", f"{problem} ({shown(every)})")
            ok = False
        elif hierarchy != HIERARCHY_SHARD_KEYS:
            section.problem("options.shard_key_rotate_after", "only a hierarchy: shard-keys table has shard keys")
            ok = False
    if not ok:
        return None
    chosen = {"table": table.strip(), "partition_prefix": prefix.strip(), "shards": shards}
    if hierarchy != HIERARCHY_FLAT:  # only when set, so a flat consumer's options read exactly as before
        chosen["hierarchy"] = hierarchy
    if every is not None:
        chosen["shard_key_rotate_after"] = every.strip()
    return Consumer(ConsumerKind.DEK_TABLE, None, chosen)


def dek_table_problems(inventory: Any, dek_table: str) -> list[str]:
    """Every dek-table consumer that names a table other than the one the app reads (`CMK_DEK_TABLE`).

    The app keeps one DEK registry; the retirement guard, the re-wrap and the resume count only there. A consumer
    naming another table would look empty to them, so its DEKs' old versions would be disabled under live DEKs (H4):
    such an inventory is refused when the app loads it, not discovered when a version is retired.
    """
    problems = []
    for key in inventory.keys:
        for j, consumer in enumerate(key.consumers):
            table = consumer.options.get("table") if consumer.kind is ConsumerKind.DEK_TABLE else None
            if table is not None and table.lower() != dek_table.lower():
                problems.append(
                    f"{inventory.file_name}: keys[{key.name}].consumers[{j}].options.table: {shown(table)} is not "
                    f"the table the app reads its DEK registry from (CMK_DEK_TABLE={shown(dek_table)}); name that "
                    "table here (e.g. ${CMK_DEK_TABLE:-cmkdeks}) or set CMK_DEK_TABLE to it"
                )
    return problems


def consumer_label(consumer: Consumer) -> str:
    if consumer.kind is ConsumerKind.DEK_TABLE:
        return f"dek-table {consumer.options['table']!r} prefix {consumer.options['partition_prefix']!r}"
    return f"{consumer.kind.value} {consumer.resource_id}"
