"""`${NAME}` and `${NAME:-default}` placeholders, filled from app settings after the YAML is parsed.

Substituting in parsed string values (never in the text) means a variable can never change the document's structure:
a value holding ": " or a newline stays one string, and placeholders in comments are inert. `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.inventory.problems import Problems, item_labels, join_path, shown

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def substitute(node: object, path: str, variables: Mapping[str, str], problems: Problems) -> object:
    """Replace placeholders in every string value; `$${` stands for a literal `${`."""
    if isinstance(node, str):
        return _substitute_text(node, path, variables, problems) if "${" in node else node
    if isinstance(node, Mapping):
        return {k: substitute(v, join_path(path, str(k)), variables, problems) for k, v in node.items()}
    if isinstance(node, list):
        items = [substitute(item, f"{path}[{i}]", variables, problems) for i, item in enumerate(node)]
        labels = item_labels(items)
        # Re-label problems found inside list items now that their names are known.
        if labels != [str(i) for i in range(len(items))]:
            for i, label in enumerate(labels):
                problems.relabel(f"{path}[{i}]", f"{path}[{label}]")
        return items
    return node


def _substitute_text(text: str, path: str, variables: Mapping[str, str], problems: Problems) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            problems.add(path, f"unterminated placeholder in {shown(text)}; write $${{ for a literal ${{")
            return token
        name, has_default, default = body.partition(":-")
        if not _VARIABLE_NAME.fullmatch(name):
            problems.add(path, f"malformed placeholder {shown(token)}; expected ${{NAME}} or ${{NAME:-default}}")
            return token
        value = variables.get(name)
        if value is not None and str(value) != "":
            return str(value)
        if has_default:
            return default
        problems.add(path, f"placeholder ${{{name}}} has no value and no default")
        return token

    return _PLACEHOLDER.sub(replace, text)
