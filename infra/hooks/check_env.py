"""Check the azd environment's values before anything is deployed: each problem named by its value, nothing changed.

The templates take the existing vaults, keys and consumers as JSON arrays of resource ids (docs/deploy.md, step 2).
A typo there would surface as an ARM error halfway through a deployment, or worse, as an app that has no right on a
key its inventory manages and reports it unreadable every hour. So the hooks run this first (python3, standard
library only), and when the app's own packages are importable (the project's .venv) it also loads the inventory and
checks that every managed key and consumer is among the ids the templates grant on.

Usage: python3 infra/hooks/check_env.py   (reads the environment azd gives its hooks; exit 1 with the problems)
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
PREFIX = rf"/subscriptions/(?P<sub>{GUID})/resourceGroups/[\w.()-]+/providers/"
VAULT = re.compile(PREFIX + r"Microsoft\.KeyVault/vaults/[\w-]+", re.IGNORECASE)
KEY = re.compile(PREFIX + r"Microsoft\.KeyVault/vaults/[\w-]+/keys/[\w-]+", re.IGNORECASE)
MYSQL = re.compile(PREFIX + r"Microsoft\.DBforMySQL/flexibleServers/[\w-]+", re.IGNORECASE)
DES = re.compile(PREFIX + r"Microsoft\.Compute/diskEncryptionSets/[\w.-]+", re.IGNORECASE)
CHOICES = {"CMK_MODE": ("audit", "enforce"), "CMK_ROLE_EVENTS_SCOPE": ("resourceGroup", "subscription")}


def _array(env: Mapping[str, str], name: str, problems: list[str], *, required: bool) -> list:
    raw = (env.get(name) or "").strip()
    if not raw:
        if required:
            problems.append(f"{name}: not set (a JSON array; docs/deploy.md, step 2)")
        return []
    try:
        value = json.loads(raw)
    except ValueError as exc:
        problems.append(f"{name}: not JSON ({exc.msg} at character {exc.pos})")
        return []
    if not isinstance(value, list) or (required and not value):
        problems.append(f"{name}: expected a {'non-empty ' if required else ''}JSON array")
        return []
    return value


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str, problems: list[str]) -> list[str]:
    found = []
    for i, item in enumerate(_array(env, name, problems, required=name == "CMK_KEY_IDS")):
        if not isinstance(item, str) or not pattern.fullmatch(item.strip()):
            problems.append(f"{name}[{i}]: not the resource id of a {what} ({str(item)[:120]!r})")
        else:
            found.append(item.strip())
    return found


def check(env: Mapping[str, str]) -> list[str]:
    """Every problem with the environment's values, each naming its value; [] when they are usable."""
    problems: list[str] = []
    vaults = []
    for i, vault in enumerate(_array(env, "CMK_VAULTS", problems, required=True)):
        where = f"CMK_VAULTS[{i}]"
        if not isinstance(vault, dict):
            problems.append(f"{where}: expected an object {{id, location, systemTopicName}}")
            continue
        unknown = sorted(set(vault) - {"id", "location", "systemTopicName"})
        if unknown:
            problems.append(f"{where}: unknown field {unknown[0]!r} (id, location, systemTopicName)")
        if not isinstance(vault.get("id"), str) or not VAULT.fullmatch(vault["id"].strip()):
            problems.append(f"{where}.id: not a Key Vault resource id ({str(vault.get('id'))[:120]!r})")
        else:
            vaults.append(vault["id"].strip())
        if not isinstance(vault.get("location"), str) or not vault["location"].strip():
            problems.append(f"{where}.location: required, the vault's region (its system topic's)")
        if not isinstance(vault.get("systemTopicName", ""), str):
            problems.append(f"{where}.systemTopicName: a name, or empty")
    keys = _ids(env, "CMK_KEY_IDS", KEY, "Key Vault key", problems)
    servers = _ids(env, "CMK_MYSQL_SERVER_IDS", MYSQL, "MySQL flexible server", problems)
    sets = _ids(env, "CMK_DISK_ENCRYPTION_SET_IDS", DES, "disk encryption set", problems)

    known_vaults = {v.lower() for v in vaults}
    for key in keys:
        if key.lower().rsplit("/keys/", 1)[0] not in known_vaults:
            problems.append(f"CMK_KEY_IDS: {key} is in no vault of CMK_VAULTS")
    subscription = (env.get("AZURE_SUBSCRIPTION_ID") or "").strip().lower()
    for rid in [*vaults, *keys, *servers, *sets]:
        match = re.match(rf"/subscriptions/({GUID})/", rid, re.IGNORECASE)
        if subscription and match and match.group(1).lower() != subscription:
            problems.append(f"{rid}: not in the deployment's subscription {subscription} (one subscription only)")
    for name, allowed in CHOICES.items():
        value = (env.get(name) or "").strip()
        if value and value not in allowed:
            problems.append(f"{name}: must be one of {', '.join(allowed)} (got {value[:40]!r})")
    for entry in (env.get("CMK_OPERATORS") or "").split(","):
        if entry.strip() and not re.fullmatch(GUID, entry.strip()):
            problems.append(f"CMK_OPERATORS: {entry.strip()[:60]!r} is not an object id (names are no credentials)")
    if not problems:
        problems += inventory_problems(env, keys, servers + sets)
    return problems


def inventory_problems(env: Mapping[str, str], keys: list[str], consumers: list[str]) -> list[str]:
    """Every key and Azure consumer the inventory manages must be one the templates grant the app rights on."""
    path = ROOT / ((env.get("CMK_INVENTORY_PATH") or "").strip() or "inventory/reference.yaml")
    if not path.is_file():
        return [f"CMK_INVENTORY_PATH: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} not found"]
    try:
        sys.path.insert(0, str(ROOT))
        from shared.inventory import load_inventory
    except ImportError:
        print("check_env: the app's packages are not importable here; the inventory is not cross-checked")
        return []
    variables = dict(env)
    variables.setdefault("CMK_SUBSCRIPTION_ID", env.get("AZURE_SUBSCRIPTION_ID", ""))
    try:
        inventory = load_inventory(path, variables)
    except Exception as exc:  # the inventory's own error names the field; shown as it is
        return [f"CMK_INVENTORY_PATH: {path.name}: {exc}"]
    granted = {k.lower() for k in keys}
    movable = {c.lower() for c in consumers}
    problems = []
    for key in inventory.keys:
        if key.scope.lower() not in granted:
            problems.append(f"CMK_KEY_IDS: the inventory manages {key.scope}, which is not listed (no rights on it)")
        for consumer in key.consumers:
            rid = consumer.resource_id
            if rid and rid.lower() not in movable:
                setting = "CMK_MYSQL_SERVER_IDS" if MYSQL.fullmatch(rid) else "CMK_DISK_ENCRYPTION_SET_IDS"
                problems.append(f"{setting}: the inventory's consumer {rid} is not listed (the app could not move it)")
    return problems


def main() -> int:
    problems = check(os.environ)
    for problem in problems:
        print(f"check_env: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
