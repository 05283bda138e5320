"""The problems found in one inventory file, each at the path of the field it concerns (`keys[aks-key].size`).

Validation reports every problem in one pass instead of stopping at the first, so readers record here and go on; a
list item is named by its `name` once that is known, so a problem points at `keys[mysql-encryption-key]`, not at
`keys[1]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.untrusted import describe_value


class Problems:
    """Problems in the order found; `items` renders them as `{source}: {path}: {message}`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self._items.append((path, message))

    def relabel(self, old_prefix: str, new_prefix: str) -> None:
        self._items = [
            (
                new_prefix + p[len(old_prefix) :]
                if p == old_prefix or p.startswith((old_prefix + ".", old_prefix + "["))
                else p,
                m,
            )
            for p, m in self._items
        ]

    @property
    def items(self) -> list[str]:
        return [f"{self.source}: {p}: {m}" if p else f"{self.source}: {m}" for p, m in self._items]


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def item_labels(items: list[object]) -> list[str]:
    """Name list items by their `name` when it is a unique string, else by index, so a problem points at one item."""
    names = [
        item["name"].strip() if isinstance(item, Mapping) and isinstance(item.get("name"), str) else None
        for item in items
    ]
    counts: dict[str, int] = {}
    for n in names:
        if n:
            counts[n.lower()] = counts.get(n.lower(), 0) + 1
    return [n if n and counts[n.lower()] == 1 and re.fullmatch(r"[\w.-]+", n) else str(i) for i, n in enumerate(names)]


def shown(value: object) -> str:
    """A value from the file as problems quote it: repr'd, so the text '5' and the number 5 read differently, and
    short enough to keep the field's path and the reason on one line."""
    return describe_value(value, limit=80, quote=True)
