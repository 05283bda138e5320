"""Route templates in-process: what matches, what the parameters are, which template wins, what is refused."""

from __future__ import annotations

import pytest

from devhost.route_templates import RouteTemplateError, compile_route


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("keys", "keys", {}),
        ("keys", "KEYS/", {}),
        ("keys", "keys/x", None),
        ("keys/{name}", "keys/orders", {"name": "orders"}),
        ("keys/{name}", "keys", None),
        ("keys/{name}/versions/{version?}", "keys/a/versions", {"name": "a"}),
        ("keys/{name}/versions/{version?}", "keys/a/versions/v1", {"name": "a", "version": "v1"}),
        ("keys/{name=all}", "keys", {"name": "all"}),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/-7", {"id": "-7"}),
        ("items/{id:int}", "items/4x", None),
        ("items/{id:int}", "items/2147483648", None),
        ("items/{id:long}", "items/2147483648", {"id": "2147483648"}),
        (
            "items/{id:guid}",
            "items/0f8fad5b-d9cb-469f-a165-70867728950e",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("items/{id:guid}", "items/not-a-guid", None),
        ("items/{name:alpha}", "items/Abc", {"name": "Abc"}),
        ("items/{name:alpha}", "items/ab1", None),
        ("items/{name:alpha:maxlength(3)}", "items/abcd", None),
        ("items/{n:range(1,5)}", "items/5", {"n": "5"}),
        ("items/{n:range(1,5)}", "items/6", None),
        ("items/{code:regex(^[a-z]{{2}}\\d$)}", "items/ab1", {"code": "ab1"}),
        ("files/{*path}", "files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "files", {}),
        ("files/{name}.{ext}", "files/report.final.pdf", {"name": "report.final", "ext": "pdf"}),
        ("", "", {}),
        ("{*all}", "anything/at/all", {"all": "anything/at/all"}),
    ],
)
def test_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected


def test_precedence_puts_literals_before_constraints_before_plain_before_catch_all() -> None:
    routes = [compile_route(t) for t in ("items/{*rest}", "items/{name}", "items/{id:int}", "items/special")]
    ordered = sorted(routes, key=lambda route: route.precedence)
    assert [route.template for route in ordered] == ["items/special", "items/{id:int}", "items/{name}", "items/{*rest}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("items/{id:integer}", "unknown constraint"),
        ("items/{id:range(a,b)}", "arguments must be integers"),
        ("items/{*rest}/more", "must be the last segment"),
        ("items/{id}/{id}", "appears twice"),
        ("items//x", "empty segment"),
        ("items/{id", "without a closing"),
        ("items/{a}{b}", "literal text between them"),
        ("items/{}", "no valid name"),
        ("items/x{a?}", "must stand alone"),
    ],
)
def test_refused_templates_say_why(template: str, message: str) -> None:
    with pytest.raises(RouteTemplateError, match=message):
        compile_route(template)
