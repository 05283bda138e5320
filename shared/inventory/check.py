"""Validate an inventory file offline, exactly as the app does when it loads it, and say what it describes.

    python -m shared.inventory.check [PATH] [--set NAME=VALUE ...] [--no-env]

PATH defaults to the app's (`CMK_INVENTORY_PATH`, else the reference inventory). Placeholders are filled from the
environment, as the app fills them from its settings, and `--set` overrides one; `--no-env` fills them from `--set`
alone (so the defaults written in the file apply). The check against `CMK_DEK_TABLE` the app makes at start-up is
made too. Nothing is read from or written to Azure. Exit 0 and a JSON summary on stdout when the file is valid; exit
1 and every problem, one a line, on stderr when it is not; exit 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from shared.inventory import Inventory, InventoryError, inventory_path, load_inventory
from shared.inventory.consumers import dek_table_problems

DEFAULT_DEK_TABLE = "cmkdeks"


def check(path: str, variables: Mapping[str, str]) -> Inventory:
    """The inventory at `path`, validated as the app validates it (InventoryError lists every problem)."""
    inventory = load_inventory(path, variables)
    dek_table = (variables.get("CMK_DEK_TABLE") or "").strip() or DEFAULT_DEK_TABLE
    if problems := dek_table_problems(inventory, dek_table):
        raise InventoryError(problems, path=path)
    return inventory


def summary(inventory: Inventory) -> dict:
    return {
        "valid": True,
        "mode": inventory.mode.value,
        "vaults": [vault.name for vault in inventory.vaults],
        "keys": [
            {
                "name": key.name,
                "vault": key.vault.name,
                "service": key.service,
                "principal_id": key.identity.principal_id,
                "consumers": [consumer.kind.value for consumer in key.consumers],
            }
            for key in inventory.keys
        ],
    }


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = argparse.ArgumentParser(prog="python -m shared.inventory.check", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", help="the inventory file (default: CMK_INVENTORY_PATH or the reference)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="fill one placeholder")
    parser.add_argument("--no-env", action="store_true", help="do not fill placeholders from the environment")
    args = parser.parse_args(argv)
    variables: dict[str, str] = {} if args.no_env else dict(os.environ)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set needs NAME=VALUE (got {item!r})")
        variables[name] = value
    path = args.path or str(inventory_path(variables))
    try:
        inventory = check(path, variables)
    except InventoryError as exc:
        count = len(exc.problems)
        print(f"{path}: invalid inventory ({count} problem{'s' if count != 1 else ''})", file=stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=stderr)
        return 1
    print(json.dumps(summary(inventory)), file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
