"""Showing a value someone else wrote (a webhook payload, an inventory file, an app setting) inside a message.

Such a value can hold a newline that forges a second log line, an ANSI escape, or a megabyte of text that pushes the
reason out of view. Every message that quotes one goes through this module, so all of them are capped and escaped the
same way, and a value is named by the type its own format uses (JSON's "object", YAML's "mapping").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Vocabulary = Literal["json", "yaml"]

_NAMES: dict[Vocabulary, dict[str, str]] = {
    "json": {"integer": "number", "number": "number", "mapping": "object", "list": "array"},
    "yaml": {"integer": "integer", "number": "number", "mapping": "mapping", "list": "list"},
}


def describe_value(value: object, *, limit: int = 160, quote: bool = False) -> str:
    """At most `limit` characters, ending in `...` when cut; characters that are not printable become `\\uXXXX`.

    `quote` shows the value as repr does (quotes around text, brackets around a list), for messages where the text
    `'5'` and the number `5` must read differently.
    """
    if isinstance(value, str) and len(value) > limit:
        value = value[: limit + 1]  # never escape (or repr) a megabyte only to cut it
    text = repr(value) if quote else str(value)
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text[: limit + 1])
    return escaped if len(escaped) <= limit else escaped[: max(limit - 3, 0)] + "..."


def type_name(value: object, vocabulary: Vocabulary = "json") -> str:
    """The name a person who wrote the document would use for a value's type (`null`, `boolean`, `string`, ...)."""
    names = _NAMES[vocabulary]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return names["integer"]
    if isinstance(value, float):
        return names["number"]
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return names["mapping"]
    if isinstance(value, list | tuple):
        return names["list"]
    return type(value).__name__
