"""One YAML mapping of the inventory being read, field by field, with every bad value recorded as a problem.

Readers ask a Section for a typed field and get None (or the default) when it is missing or wrong, with the problem
already recorded at the field's path; so one pass over the file reports everything wrong with it, and a knock-on
effect of one bad field is never reported as a second problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from enum import Enum
from typing import Any

from shared.inventory.problems import Problems, item_labels, join_path, shown
from shared.untrusted import type_name

MISSING: Any = object()


class Section:
    """One YAML mapping being read. Accessors record problems instead of raising, so one pass reports them all;
    a bad or missing value comes back as None (or the default, for optional fields)."""

    def __init__(self, data: Mapping, path: str, problems: Problems, fields: Collection[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        for name in data:
            if not isinstance(name, str) or name not in fields:
                close = difflib.get_close_matches(str(name), list(fields), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(fields)}"
                problems.add(self.at(str(name)), f"unknown field ({hint})")

    def at(self, name: str) -> str:
        return join_path(self.path, name)

    def problem(self, name: str, message: str) -> None:
        self.problems.add(self.at(name), message)

    def raw(self, name: str, required: bool) -> Any:
        """The value, or MISSING when absent, null or an empty string (an empty placeholder means 'not set')."""
        value = self.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(name, "required field is missing")
            return MISSING
        return value

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        default: str | None = None,
        check: Callable[[str], str | None] | None = None,
        normalize: Callable[[str], str] | None = None,
    ) -> str | None:
        value = self.raw(name, required)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self.problem(name, f"expected a string, got {type_name(value, 'yaml')} ({shown(value)})")
            return None
        value = value.strip()
        if check is not None and (message := check(value)):
            self.problem(name, message)
            return None
        return normalize(value) if normalize else value

    def choice(self, name: str, enum: type[Enum], *, required: bool = True, default: Any = None) -> Any:
        allowed = [m.value for m in enum]

        def check(value: str) -> str | None:
            return None if value in allowed else f"expected one of {', '.join(allowed)}, got {shown(value)}"

        value = self.text(name, required=required, check=check)
        return default if value is None else enum(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, required=False)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"expected true or false, got {type_name(value, 'yaml')} ({shown(value)})")
            return default
        return value

    def integer(self, name: str, *, required: bool = True, default: int | None = None) -> int | None:
        value = self.raw(name, required)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"expected an integer, got {type_name(value, 'yaml')} ({shown(value)})")
            return None
        return value

    def items(self, name: str, *, required: bool = True) -> list | None:
        value = self.raw(name, required)
        if value is MISSING:
            return None
        if not isinstance(value, list):
            self.problem(name, f"expected a list, got {type_name(value, 'yaml')}")
            return None
        return value

    def section(self, name: str, fields: Collection[str], *, required: bool = True) -> Section | None:
        value = self.raw(name, required)
        if value is MISSING:
            return None
        if not isinstance(value, Mapping):
            self.problem(name, f"expected a mapping, got {type_name(value, 'yaml')}")
            return None
        return Section(value, self.at(name), self.problems, fields)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.raw(name, required=False)
        if value is MISSING:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            self.problem(name, f"expected a mapping with string keys, got {type_name(value, 'yaml')}")
            return {}
        return dict(value)


def each_mapping(section: Section, name: str, *, required: bool) -> list[tuple[str, Mapping | None]]:
    """(path, mapping or None) for each item of a list field; non-mapping items are reported."""
    values = section.items(name, required=required)
    if values is None:
        return []
    result = []
    for label, value in zip(item_labels(values), values, strict=True):
        path = f"{section.at(name)}[{label}]"
        if isinstance(value, Mapping):
            result.append((path, value))
        else:
            section.problems.add(path, f"expected a mapping, got {type_name(value, 'yaml')}")
            result.append((path, None))
    return result
