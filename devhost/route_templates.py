"""HTTP trigger route templates, matched the way the Functions host (ASP.NET Core routing) matches them.

Supported: literal segments (case-insensitive), `{name}`, optional `{name?}`, defaults `{name=value}`, catch-all
`{*rest}` / `{**rest}` (last segment, may be empty), several parameters in one segment (`{file}.{ext}`), and the
inline constraints int, long, bool, guid, alpha, double, float, decimal, datetime, required, minlength(n),
maxlength(n), length(n) / length(a,b), min(n), max(n), range(a,b) and regex(expr). An unknown constraint is an error
when the app is loaded, not a surprise on the first request.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

Validator = Callable[[str], bool]


class RouteTemplateError(ValueError):
    """A route template that the host would refuse; the message names the template and the problem."""


@dataclass(frozen=True)
class RouteParameter:
    name: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: tuple[str, ...] = ()
    validators: tuple[Validator, ...] = field(default=(), repr=False, compare=False)

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.validators)


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route: `match(path)` gives the route parameters, or None when the path is not this route."""

    template: str
    parameters: tuple[RouteParameter, ...]
    precedence: tuple[float, ...]
    pattern: re.Pattern[str] = field(repr=False, compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path.strip("/"))
        if not found:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found.group(_group(parameter.name))
            if value is None or value == "":
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                elif parameter.optional or parameter.catch_all:
                    continue
                else:
                    return None
                continue
            if not parameter.accepts(value):
                return None
            values[parameter.name] = value
        return values


def compile_route(template: str) -> RouteTemplate:
    """Parses a route template such as `keys/{name}/versions/{version?}` into a matcher."""
    text = template.strip().strip("/")
    segments = text.split("/") if text else []
    parameters: list[RouteParameter] = []
    pieces: list[str] = []
    precedence: list[float] = []
    for index, segment in enumerate(segments):
        if not segment:
            raise RouteTemplateError(f"route {template!r}: empty segment (two slashes in a row)")
        parts = _split_segment(segment, template)
        segment_parameters = [part for part in parts if isinstance(part, RouteParameter)]
        for parameter in segment_parameters:
            if any(existing.name.lower() == parameter.name.lower() for existing in parameters):
                raise RouteTemplateError(f"route {template!r}: parameter {parameter.name!r} appears twice")
            if parameter.catch_all and index != len(segments) - 1:
                raise RouteTemplateError(
                    f"route {template!r}: catch-all {{*{parameter.name}}} must be the last segment"
                )
        parameters.extend(segment_parameters)
        separator = "/" if index else ""
        sole = parts[0] if len(parts) == 1 and isinstance(parts[0], RouteParameter) else None
        if sole is not None and (sole.optional or sole.catch_all or sole.default is not None):
            body = f"(?P<{_group(sole.name)}>{'.*' if sole.catch_all else '[^/]*'})"
            pieces.append(f"(?:{separator}{body})?")
            precedence.append(4 if sole.catch_all else 3)
            continue
        if sole is None and any(p.optional or p.catch_all for p in segment_parameters):
            raise RouteTemplateError(
                f"route {template!r}: segment {segment!r}: optional or catch-all parameters must stand alone"
            )
        body = "".join(
            re.escape(part) if isinstance(part, str) else f"(?P<{_group(part.name)}>[^/]+)" for part in parts
        )
        pieces.append(separator + body)
        if sole is None and not segment_parameters:
            precedence.append(0)
        elif sole is None:
            precedence.append(1.5)
        else:
            precedence.append(1 if sole.constraints else 2)
    pattern = re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)
    return RouteTemplate(template=text, parameters=tuple(parameters), precedence=tuple(precedence), pattern=pattern)


def _group(name: str) -> str:
    """Regex group names must be identifiers; route parameter names are, apart from the case of a leading digit."""
    return "p_" + re.sub(r"\W", "_", name)


def _split_segment(segment: str, template: str) -> list[str | RouteParameter]:
    parts: list[str | RouteParameter] = []
    position = 0
    while position < len(segment):
        start = segment.find("{", position)
        if start < 0:
            parts.append(segment[position:])
            break
        if start > position:
            parts.append(segment[position:start])
        end = _closing_brace(segment, start, template)
        parts.append(_parse_parameter(segment[start + 1 : end], template))
        position = end + 1
    for left, right in itertools.pairwise(parts):
        if isinstance(left, RouteParameter) and isinstance(right, RouteParameter):
            raise RouteTemplateError(
                f"route {template!r}: segment {segment!r}: two parameters need literal text between them"
            )
    if any(isinstance(part, str) and ("}" in part) for part in parts):
        raise RouteTemplateError(f"route {template!r}: segment {segment!r}: unbalanced '}}'")
    return parts


def _closing_brace(segment: str, start: int, template: str) -> int:
    depth = 0
    for index in range(start + 1, len(segment)):
        char = segment[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "}" and depth == 0:
            return index
    raise RouteTemplateError(f"route {template!r}: segment {segment!r}: '{{' without a closing '}}'")


_NAME = re.compile(r"^(?P<stars>\*{0,2})(?P<name>[A-Za-z_][\w]*)")


def _parse_parameter(body: str, template: str) -> RouteParameter:
    found = _NAME.match(body)
    if not found:
        raise RouteTemplateError(f"route {template!r}: parameter {{{body}}} has no valid name")
    name, catch_all = found["name"], bool(found["stars"])
    rest = body[found.end() :]
    optional, default = False, None
    constraints: list[str] = []
    while rest:
        if rest == "?":
            optional, rest = True, ""
        elif rest.startswith("="):
            default, rest = rest[1:], ""
        elif rest.startswith(":"):
            constraint, rest = _take_constraint(rest[1:], template, name)
            constraints.append(constraint)
        else:
            raise RouteTemplateError(f"route {template!r}: parameter {name!r}: unexpected {rest!r}")
    if catch_all and optional:
        raise RouteTemplateError(f"route {template!r}: catch-all {name!r} is already optional; drop the '?'")
    validators = tuple(_validator(constraint, template, name) for constraint in constraints)
    return RouteParameter(
        name=name,
        optional=optional,
        catch_all=catch_all,
        default=default,
        constraints=tuple(constraints),
        validators=validators,
    )


def _take_constraint(text: str, template: str, name: str) -> tuple[str, str]:
    depth = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char in ":?=":
            return text[:index], text[index:]
    if depth:
        raise RouteTemplateError(f"route {template!r}: parameter {name!r}: unbalanced '(' in constraint {text!r}")
    return text, ""


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _integer_in(bounds: tuple[int, int]) -> Validator:
    def check(value: str) -> bool:
        return re.fullmatch(r"[-+]?\d+", value) is not None and bounds[0] <= int(value) <= bounds[1]

    return check


def _is_float(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_SIMPLE: dict[str, Validator] = {
    "int": _integer_in(_INT32),
    "long": _integer_in(_INT64),
    "bool": lambda value: value.lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda value: re.fullmatch(r"[A-Za-z]+", value) is not None,
    "double": _is_float,
    "float": _is_float,
    "decimal": _is_float,
    "datetime": _is_datetime,
    "required": lambda value: value != "",
}


def _validator(constraint: str, template: str, name: str) -> Validator:
    where = f"route {template!r}: parameter {name!r}: constraint {constraint!r}"
    if constraint in _SIMPLE:
        return _SIMPLE[constraint]
    found = re.fullmatch(r"(?P<kind>\w+)\((?P<args>.*)\)", constraint, re.DOTALL)
    if not found:
        raise RouteTemplateError(f"{where}: unknown constraint")
    kind, args = found["kind"], found["args"]
    if kind == "regex":
        try:
            # braces in a route template are written doubled ({{ and }}), as in ASP.NET
            expression = re.compile(args.replace("{{", "{").replace("}}", "}"), re.IGNORECASE)
        except re.error as error:
            raise RouteTemplateError(f"{where}: bad regular expression ({error})") from None
        return lambda value: expression.search(value) is not None
    try:
        numbers = [int(part) for part in args.split(",")]
    except ValueError:
        raise RouteTemplateError(f"{where}: arguments must be integers") from None
    if kind == "minlength" and len(numbers) == 1:
        return lambda value: len(value) >= numbers[0]
    if kind == "maxlength" and len(numbers) == 1:
        return lambda value: len(value) <= numbers[0]
    if kind == "length" and len(numbers) in (1, 2):
        low, high = numbers[0], numbers[-1]
        return lambda value: low <= len(value) <= high
    is_long = _integer_in(_INT64)
    if kind == "min" and len(numbers) == 1:
        return lambda value: is_long(value) and int(value) >= numbers[0]
    if kind == "max" and len(numbers) == 1:
        return lambda value: is_long(value) and int(value) <= numbers[0]
    if kind == "range" and len(numbers) == 2:
        return lambda value: is_long(value) and numbers[0] <= int(value) <= numbers[1]
    raise RouteTemplateError(f"{where}: unknown constraint or wrong number of arguments")
