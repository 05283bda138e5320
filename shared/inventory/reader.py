"""Reading the inventory: YAML with duplicate keys refused, placeholders, and validation that reports every problem
with the file, key and field it concerns.

The reading is spread over modules of one concept each (shared.inventory.document, _placeholders, _problems, _section,
_checks, _policy, _principals, _vaults, _keys, _rotation, _consumers, _key_rules); this module puts them in order and
keeps the names callers import from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.inventory.checks import alert_url_problem, guid_problem
from shared.inventory.consumers import CONSUMER_RESOURCE_TYPES
from shared.inventory.document import read_document
from shared.inventory.keys import read_keys
from shared.inventory.model import Inventory, InventoryError, Mode, file_name
from shared.inventory.placeholders import substitute
from shared.inventory.policy import KEY_OPS, KEY_TYPES, RSA_SIZES, read_policy
from shared.inventory.principals import USER_ASSIGNED_IDENTITY_TYPE, read_break_glass
from shared.inventory.problems import Problems
from shared.inventory.rotation import DEFAULT_NOTIFY_BEFORE, MIN_EXPIRE_AFTER, MIN_NOTIFY_BEFORE, MIN_ROTATE_AFTER
from shared.inventory.section import Section
from shared.inventory.vaults import VAULT_RESOURCE_TYPE, read_vaults
from shared.untrusted import type_name

__all__ = [
    "CONSUMER_RESOURCE_TYPES",
    "DEFAULT_NOTIFY_BEFORE",
    "KEY_OPS",
    "KEY_TYPES",
    "MIN_EXPIRE_AFTER",
    "MIN_NOTIFY_BEFORE",
    "MIN_ROTATE_AFTER",
    "RSA_SIZES",
    "USER_ASSIGNED_IDENTITY_TYPE",
    "VAULT_RESOURCE_TYPE",
    "load_inventory",
    "parse_inventory",
]

_TOP_FIELDS = ("mode", "app_identity", "alert_topic", "policy", "break_glass", "vaults", "keys")


def load_inventory(path: str | Path, variables: Mapping[str, str] | None = None) -> Inventory:
    """Read, substitute and validate an inventory file. InventoryError lists every problem."""
    return parse_inventory(read_document(path), source=str(path), variables=variables)


def parse_inventory(
    data: object, *, source: str = "inventory.yaml", variables: Mapping[str, str] | None = None
) -> Inventory:
    """Validate an already-parsed inventory document (a mapping), substituting placeholders from `variables`.

    `source` is the file it came from; problems name it by its file name only (the error's `path` keeps it whole)."""
    problems = Problems(file_name(source))
    data = substitute(data, "", variables or {}, problems)
    if not isinstance(data, Mapping):
        problems.add("", f"expected a mapping of inventory fields at the top level, got {type_name(data, 'yaml')}")
        raise InventoryError(problems.items, path=source)
    root = Section(data, "", problems, _TOP_FIELDS)
    mode = root.choice("mode", Mode)
    app_identity = root.text("app_identity", check=guid_problem, normalize=str.lower)
    alert_topic = root.text("alert_topic", required=False, check=alert_url_problem)
    policy = read_policy(root)
    break_glass = read_break_glass(root)
    vaults = read_vaults(root)
    keys = read_keys(root, vaults, policy, break_glass, app_identity)
    if problems.items:
        raise InventoryError(problems.items, path=source)
    assert mode is not None and app_identity is not None and vaults is not None
    return Inventory(
        mode=mode,
        app_identity=app_identity,
        alert_topic=alert_topic.rstrip("/") if alert_topic else None,
        policy=policy,
        break_glass=tuple(break_glass),
        vaults=tuple(vaults.values()),
        keys=tuple(keys),
        source=source,
    )
