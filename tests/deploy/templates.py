"""The deployment templates as the tests read them: every .bicep file parsed by pycep-parser (no Bicep compiler can
be installed where this runs), and small readers over pycep's JSON for what the consistency tests compare with the
app: app settings, Event Grid subscriptions, role assignments and the roles they name.

pycep gives expressions as nested dicts (`{"function": ...}`, `{"operator": ...}`) and identifiers as bare strings;
the readers here follow only the shapes the templates use, and fail loudly (KeyError, AssertionError) on any other,
so a template change that these tests cannot see through breaks a test instead of passing silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's properties, through a condition (`= if (...)`) or a loop (`= [for ...]`)."""
    config = declaration["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(path: Path, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
    found = parse(path).get("resources", {})
    return {
        name: r
        for name, r in found.items()
        if resource_type is None or (r["type"].lower() == resource_type.lower() and not r.get("existing"))
    }


def variable(path: Path, name: str) -> Any:
    return parse(path)["variables"][name]["value"]


def accessor(expression: Any) -> str:
    """`a.b.c` from pycep's nested property accessors (an identifier is itself)."""
    if isinstance(expression, str):
        return expression
    operator = expression["operator"]
    assert operator["type"] == "property_accessor", expression
    return f"{accessor(operator['operands']['operand_1'])}.{accessor(operator['operands']['operand_2'])}"


def app_settings() -> dict[str, Any]:
    """Name -> value expression of every app setting the function app gets."""
    site = resources(INFRA / "app" / "function.bicep", "Microsoft.Web/sites")["app"]
    listed = body(site)["properties"]["siteConfig"]["appSettings"]
    names = [s["name"] for s in listed]
    assert len(names) == len(set(names)), "an app setting is set twice"
    return {s["name"]: s["value"] for s in listed}


@dataclass(frozen=True)
class Subscription:
    file: str
    function: str
    event_types: frozenset[str]
    advanced_filters: tuple[dict[str, Any], ...]
    endpoint_type: str
    schema: str


def event_subscriptions() -> list[Subscription]:
    found = []
    for path in bicep_files():
        for declaration in resources(path, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values():
            props = body(declaration)["properties"]
            destination = props["destination"]
            target = destination["properties"]["resourceId"]
            match = re.fullmatch(r"\$\{functionAppId\}/functions/(\w+)", target)
            assert match, f"{path.name}: destination is not one of the app's functions ({target})"
            found.append(
                Subscription(
                    path.relative_to(INFRA).as_posix(),
                    match.group(1),
                    frozenset(props["filter"]["includedEventTypes"]),
                    tuple(props["filter"].get("advancedFilters", ())),
                    destination["endpointType"],
                    props["eventDeliverySchema"],
                )
            )
    return found


@dataclass(frozen=True)
class Grant:
    """One role assignment the templates make: where it is declared, on what, and which role (a built-in's GUID, or
    `custom:<role name>` for one of infra/access/roles.bicep)."""

    file: str
    scope: str
    role: str


def _custom_role_names() -> dict[str, str]:
    """Output name of infra/access/roles.bicep -> `custom:<roleName without the environment suffix>`."""
    path = INFRA / "access" / "roles.bicep"
    definitions = resources(path, "Microsoft.Authorization/roleDefinitions")
    names = {}
    for output, declaration in parse(path)["outputs"].items():
        symbol, _, prop = accessor(declaration["value"]).partition(".")
        assert prop == "id", output
        role_name = body(definitions[symbol])["properties"]["roleName"]
        names[output] = "custom:" + role_name.split(" (${environmentName})")[0]
    return names


def _role_of(path: Path, expression: Any, module_params: dict[str, Any]) -> str:
    if isinstance(expression, dict) and "function" in expression:
        call = expression["function"]
        assert call["type"] == "subscription_resource_id", expression
        assert call["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        guid = variable(path, call["parameters"]["resource_name_1"])
        assert GUID.match(guid), f"{path.name}: {guid} is not a role GUID"
        return guid
    assert isinstance(expression, str) and expression in parse(path)["parameters"], expression
    passed = module_params[expression]
    if isinstance(passed, str) and not passed.startswith("$"):
        return _caller_value(passed)
    return _caller_value(accessor(passed))


def _caller_value(reference: str) -> str:
    if reference.startswith("roles.outputs."):
        return _custom_role_names()[reference.removeprefix("roles.outputs.")]
    raise AssertionError(f"a role given as {reference!r}: the tests cannot tell which role that is")


def _module_params() -> dict[str, dict[str, Any]]:
    """Module file (relative to infra/) -> the params the templates pass it (one call site per module file)."""
    calls: dict[str, dict[str, Any]] = {}
    for path in bicep_files():
        for module in parse(path).get("modules", {}).values():
            target = (path.parent / module["detail"]["path"]).resolve().relative_to(INFRA).as_posix()
            calls.setdefault(target, {}).update(body(module).get("params", {}))
    return calls


def grants() -> list[Grant]:
    params = _module_params()
    found = []
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        for declaration in resources(path, "Microsoft.Authorization/roleAssignments").values():
            config = body(declaration)
            role = _role_of_with_callers(path, config["properties"]["roleDefinitionId"], params.get(relative, {}))
            found.append(Grant(relative, config["scope"], role))
    return found


def _role_of_with_callers(path: Path, expression: Any, module_params: dict[str, Any]) -> str:
    if isinstance(expression, dict) and "function" in expression:
        call = expression["function"]
        name = call["parameters"]["resource_name_1"]
        if name in parse(path).get("parameters", {}):
            # The role GUID is a parameter: the caller passes one of its own variables.
            caller = next(p for p in bicep_files() if _calls(p, path))
            guid = variable(caller, module_params[name])
            assert GUID.match(guid), guid
            return guid
    return _role_of(path, expression, module_params)


def _calls(caller: Path, module: Path) -> bool:
    return any(
        (caller.parent / m["detail"]["path"]).resolve() == module.resolve()
        for m in parse(caller).get("modules", {}).values()
    )
