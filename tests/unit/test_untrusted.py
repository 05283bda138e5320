"""shared.untrusted: a value someone else wrote, shown in a message capped, on one line, and named by its type."""

from __future__ import annotations

import datetime

import pytest

from shared.untrusted import describe_value, type_name


def test_short_text_is_shown_as_written():
    assert describe_value("kv-test/aks-key") == "kv-test/aks-key"
    assert describe_value("abc", quote=True) == "'abc'"
    assert describe_value(5, quote=True) == "5"


def test_long_text_is_cut_to_the_limit_and_says_so():
    shown = describe_value("x" * 10_000, limit=20)
    assert shown == "x" * 17 + "..."
    assert len(describe_value("y" * 10_000)) == 160
    assert describe_value("z" * 20, limit=20) == "z" * 20  # exactly the limit: nothing cut


def test_quoted_long_text_is_cut_inside_the_quotes():
    assert describe_value("a" * 100, limit=80, quote=True) == "'" + "a" * 76 + "..."


@pytest.mark.parametrize("quote", [False, True])
def test_control_characters_never_reach_the_line(quote: bool):
    shown = describe_value("ok\nFAKE LOG LINE\r\x1b[31m\u2028end", quote=quote)
    assert not any(ch in shown for ch in "\n\r\x1b\u2028")
    assert "FAKE LOG LINE" in shown and "end" in shown


def test_unquoted_control_characters_are_written_as_escapes():
    assert describe_value("a\nb\x1bc") == "a\\u000ab\\u001bc"


def test_an_escape_counts_towards_the_limit():
    assert len(describe_value("\n" * 100, limit=20)) == 20
    assert describe_value("\n" * 100, limit=20) == "\\u000a" * 2 + "\\u000" + "..."


def test_non_text_values_are_shown_by_their_text_or_repr():
    assert describe_value(["a", 1], quote=True) == "['a', 1]"
    assert describe_value(3.5) == "3.5"


@pytest.mark.parametrize(
    ("value", "json_name", "yaml_name"),
    [
        (None, "null", "null"),
        (True, "boolean", "boolean"),
        (3, "number", "integer"),
        (3.5, "number", "number"),
        ("s", "string", "string"),
        ({"a": 1}, "object", "mapping"),
        ([1], "array", "list"),
    ],
)
def test_type_names_follow_the_document_format(value: object, json_name: str, yaml_name: str):
    assert type_name(value) == json_name
    assert type_name(value, "yaml") == yaml_name


def test_other_types_are_named_by_their_class():
    assert type_name(datetime.date(2026, 1, 1), "yaml") == "date"
