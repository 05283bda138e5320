"""Reading the inventory file's YAML: the safe loader, with duplicate fields refused, and errors that name the line.

PyYAML keeps the last of two equal keys and drops the first without a word; in an inventory that could silently
replace a consumer's principal id, so a duplicate is an error here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.inventory.model import InventoryError, file_name
from shared.inventory.problems import shown


def read_document(path: str | Path) -> object:
    """The parsed YAML document of an inventory file. InventoryError (one problem, naming file and line) otherwise."""
    name = file_name(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:  # its str() holds the full path; strerror does not
        raise InventoryError(
            [f"{name}: cannot read the inventory: {exc.strerror or type(exc).__name__}"], path=str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            [f"{name}: cannot read the inventory: not UTF-8 ({exc.reason} at byte {exc.start})"], path=str(path)
        ) from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise InventoryError([f"{name}: {where}: {detail or 'invalid YAML'}"], path=str(path)) from None
    except yaml.YAMLError as exc:
        raise InventoryError([f"{name}: invalid YAML: {exc}"], path=str(path)) from None


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys: PyYAML would keep the last one and silently drop the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable key: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate field {shown(key)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)
