"""Reading the inventory: YAML with duplicate keys refused, placeholders, and validation that reports every problem
with the file, key and field it concerns.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from shared.inventory_model import (
    Consumer,
    Identity,
    IdentityKind,
    Inventory,
    InventoryError,
    IsoDuration,
    ManagedKey,
    ManagedVault,
    Mode,
    Policy,
    Principal,
    Rotation,
    normalize_scope,
)
from shared.model import (
    ConsumerKind,
    PrincipalType,
)
from shared.roles import CRYPTO_SERVICE_ENCRYPTION_USER, ROLES_BY_NAME, BuiltInRole, role_by_id
from shared.rotation_policy import MIN_EXPIRES_IN as MIN_EXPIRE_AFTER
from shared.rotation_policy import MIN_NOTIFY_BEFORE_EXPIRY as MIN_NOTIFY_BEFORE
from shared.rotation_policy import MIN_ROTATE_AFTER_CREATE as MIN_ROTATE_AFTER
from shared.rotation_policy import MIN_ROTATE_BEFORE_EXPIRY, duration_to_timedelta

RSA_SIZES = (2048, 3072, 4096)
KEY_TYPES = ("RSA-HSM", "RSA")
# Key Vault key operations, and the role data action each needs (see shared.roles short names).
KEY_OPS: dict[str, str | None] = {
    "wrapKey": "wrap",
    "unwrapKey": "unwrap",
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "sign": "sign",
    "verify": "verify",
    "import": None,
    "export": None,
}
DEFAULT_NOTIFY_BEFORE = "P30D"

# ARM resource types an Azure consumer kind must point at.
CONSUMER_RESOURCE_TYPES: dict[ConsumerKind, str] = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: "Microsoft.DBforMySQL/flexibleServers",
    ConsumerKind.DISK_ENCRYPTION_SET: "Microsoft.Compute/diskEncryptionSets",
}
VAULT_RESOURCE_TYPE = "Microsoft.KeyVault/vaults"
USER_ASSIGNED_IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"

# --------------------------------------------------------------------------------------------------------------------
# Loading


def load_inventory(path: str | Path, variables: Mapping[str, str] | None = None) -> Inventory:
    """Read, substitute and validate an inventory file. InventoryError lists every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([f"{source}: cannot read the inventory: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise InventoryError([f"{source}: {where}: {detail or 'invalid YAML'}"]) from None
    except yaml.YAMLError as exc:
        raise InventoryError([f"{source}: invalid YAML: {exc}"]) from None
    return parse_inventory(data, source=source, variables=variables)


def parse_inventory(
    data: object, *, source: str = "inventory.yaml", variables: Mapping[str, str] | None = None
) -> Inventory:
    """Validate an already-parsed inventory document (a mapping), substituting placeholders from `variables`."""
    problems = _Problems(source)
    data = _substitute(data, "", variables or {}, problems)
    if not isinstance(data, Mapping):
        problems.add("", f"expected a mapping of inventory fields at the top level, got {_type_name(data)}")
        raise InventoryError(problems.items)
    root = _Section(data, "", problems, _TOP_FIELDS)
    mode = root.choice("mode", Mode)
    app_identity = root.text("app_identity", check=_guid_problem, normalize=str.lower)
    alert_topic = root.text("alert_topic", required=False, check=_alert_url_problem)
    policy = _read_policy(root)
    break_glass = _read_break_glass(root)
    vaults = _read_vaults(root)
    keys = _read_keys(root, vaults, policy, break_glass, app_identity)
    if problems.items:
        raise InventoryError(problems.items)
    assert mode is not None and app_identity is not None and vaults is not None
    return Inventory(
        mode=mode,
        app_identity=app_identity,
        alert_topic=alert_topic.rstrip("/") if alert_topic else None,
        policy=policy,
        break_glass=tuple(break_glass),
        vaults=tuple(vaults.values()),
        keys=tuple(keys),
        source=source,
    )


class _StrictLoader(yaml.SafeLoader):
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
                    "while reading a mapping", node.start_mark, f"duplicate field {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


# --------------------------------------------------------------------------------------------------------------------
# Placeholders

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute(node: object, path: str, variables: Mapping[str, str], problems: _Problems) -> object:
    """Replace placeholders in every string value; `$${` stands for a literal `${`."""
    if isinstance(node, str):
        return _substitute_text(node, path, variables, problems) if "${" in node else node
    if isinstance(node, Mapping):
        return {k: _substitute(v, _join(path, str(k)), variables, problems) for k, v in node.items()}
    if isinstance(node, list):
        items = [_substitute(item, f"{path}[{i}]", variables, problems) for i, item in enumerate(node)]
        labels = _item_labels(items)
        # Re-label problems found inside list items now that their names are known.
        if labels != [str(i) for i in range(len(items))]:
            for i, label in enumerate(labels):
                problems.relabel(f"{path}[{i}]", f"{path}[{label}]")
        return items
    return node


def _substitute_text(text: str, path: str, variables: Mapping[str, str], problems: _Problems) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            problems.add(path, f"unterminated placeholder in {_show(text)}; write $${{ for a literal ${{")
            return token
        name, has_default, default = body.partition(":-")
        if not _VARIABLE_NAME.fullmatch(name):
            problems.add(path, f"malformed placeholder {_show(token)}; expected ${{NAME}} or ${{NAME:-default}}")
            return token
        value = variables.get(name)
        if value is not None and str(value) != "":
            return str(value)
        if has_default:
            return default
        problems.add(path, f"placeholder ${{{name}}} has no value and no default")
        return token

    return _PLACEHOLDER.sub(replace, text)


# --------------------------------------------------------------------------------------------------------------------
# Validation machinery

_MISSING: Any = object()


class _Problems:
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


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _item_labels(items: list[object]) -> list[str]:
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


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Section:
    """One YAML mapping being read. Accessors record problems instead of raising, so one pass reports them all;
    a bad or missing value comes back as None (or the default, for optional fields)."""

    def __init__(self, data: Mapping, path: str, problems: _Problems, fields: Collection[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        for name in data:
            if not isinstance(name, str) or name not in fields:
                close = difflib.get_close_matches(str(name), list(fields), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(fields)}"
                problems.add(self.at(str(name)), f"unknown field ({hint})")

    def at(self, name: str) -> str:
        return _join(self.path, name)

    def problem(self, name: str, message: str) -> None:
        self.problems.add(self.at(name), message)

    def raw(self, name: str, required: bool) -> Any:
        """The value, or _MISSING when absent, null or an empty string (an empty placeholder means 'not set')."""
        value = self.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(name, "required field is missing")
            return _MISSING
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
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.problem(name, f"expected a string, got {_type_name(value)} ({_show(value)})")
            return None
        value = value.strip()
        if check is not None and (message := check(value)):
            self.problem(name, message)
            return None
        return normalize(value) if normalize else value

    def choice(self, name: str, enum: type[Enum], *, required: bool = True, default: Any = None) -> Any:
        allowed = [m.value for m in enum]

        def check(value: str) -> str | None:
            return None if value in allowed else f"expected one of {', '.join(allowed)}, got {_show(value)}"

        value = self.text(name, required=required, check=check)
        return default if value is None else enum(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, required=False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"expected true or false, got {_type_name(value)} ({_show(value)})")
            return default
        return value

    def integer(self, name: str, *, required: bool = True, default: int | None = None) -> int | None:
        value = self.raw(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"expected an integer, got {_type_name(value)} ({_show(value)})")
            return None
        return value

    def items(self, name: str, *, required: bool = True) -> list | None:
        value = self.raw(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            self.problem(name, f"expected a list, got {_type_name(value)}")
            return None
        return value

    def section(self, name: str, fields: Collection[str], *, required: bool = True) -> _Section | None:
        value = self.raw(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, Mapping):
            self.problem(name, f"expected a mapping, got {_type_name(value)}")
            return None
        return _Section(value, self.at(name), self.problems, fields)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.raw(name, required=False)
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            self.problem(name, f"expected a mapping with string keys, got {_type_name(value)}")
            return {}
        return dict(value)


def _each_mapping(section: _Section, name: str, *, required: bool) -> list[tuple[str, Mapping | None]]:
    """(path, mapping or None) for each item of a list field; non-mapping items are reported."""
    values = section.items(name, required=required)
    if values is None:
        return []
    result = []
    for label, value in zip(_item_labels(values), values, strict=True):
        path = f"{section.at(name)}[{label}]"
        if isinstance(value, Mapping):
            result.append((path, value))
        else:
            section.problems.add(path, f"expected a mapping, got {_type_name(value)}")
            result.append((path, None))
    return result


# --------------------------------------------------------------------------------------------------------------------
# Field checks: each returns None when fine, else a message saying what is wrong.

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VAULT_NAME = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]")
_KEY_NAME = re.compile(r"[A-Za-z0-9-]{1,127}")
_RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+")
_ARM_SEGMENT = re.compile(r"[^/\s?#]+")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _guid_problem(value: str) -> str | None:
    return None if _GUID.fullmatch(value) else f"not a GUID ({_show(value)})"


def _vault_name_problem(value: str) -> str | None:
    if _VAULT_NAME.fullmatch(value):
        return None
    return (
        f"not a valid vault name ({_show(value)}): 3-24 letters, digits and dashes, starting with a letter, "
        "ending with a letter or digit, no consecutive dashes"
    )


def _key_name_problem(value: str) -> str | None:
    if _KEY_NAME.fullmatch(value):
        return None
    return f"not a valid key name ({_show(value)}): 1-127 letters, digits and dashes"


def _resource_group_problem(value: str) -> str | None:
    if _RESOURCE_GROUP.fullmatch(value):
        return None
    return f"not a valid resource group name ({_show(value)})"


def _url_problem(value: str, *, allow_loopback_http: bool) -> str | None:
    parts = urlsplit(value)
    loopback = (parts.hostname or "") in _LOOPBACK_HOSTS
    if parts.scheme != "https" and not (allow_loopback_http and parts.scheme == "http" and loopback):
        allowed = "https (http only on 127.0.0.1/localhost)" if allow_loopback_http else "https"
        return f"URL must use {allowed} ({_show(value)})"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"URL has an invalid port ({_show(value)})"
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        return f"not a valid URL ({_show(value)})"
    return None


def _vault_url_problem(value: str) -> str | None:
    message = _url_problem(value, allow_loopback_http=False)
    if message is None and urlsplit(value).path not in ("", "/"):
        return f"a vault URL has no path ({_show(value)}); expected e.g. https://kv-name.vault.azure.net"
    return message


def _alert_url_problem(value: str) -> str | None:
    return _url_problem(value, allow_loopback_http=True)


@dataclass(frozen=True)
class _ArmId:
    subscription_id: str
    resource_group: str
    resource_type: str  # e.g. Microsoft.Compute/diskEncryptionSets
    name: str


def _parse_arm_id(value: str) -> _ArmId | str:
    """A resource id under a resource group, or a message saying why `value` is not one."""
    expected = "expected /subscriptions/{guid}/resourceGroups/{group}/providers/{Namespace}/{type}/{name}"
    parts = value.split("/")
    if (
        len(parts) < 9
        or parts[0] != ""
        or parts[1].lower() != "subscriptions"
        or parts[3].lower() != "resourcegroups"
        or parts[5].lower() != "providers"
        or len(parts[7:]) % 2 != 0
    ):
        return f"not an ARM resource id ({_show(value)}); {expected}"
    subscription, group, namespace, rest = parts[2], parts[4], parts[6], parts[7:]
    if not _GUID.fullmatch(subscription):
        return f"not an ARM resource id ({_show(value)}): subscription {_show(subscription)} is not a GUID"
    if not _RESOURCE_GROUP.fullmatch(group):
        return f"not an ARM resource id ({_show(value)}): invalid resource group {_show(group)}"
    if not _NAMESPACE.fullmatch(namespace) or not all(_ARM_SEGMENT.fullmatch(s) for s in rest):
        return f"not an ARM resource id ({_show(value)}); {expected}"
    resource_type = "/".join([namespace, *rest[0::2]])
    return _ArmId(subscription.lower(), group, resource_type, rest[-1])


def _arm_id_check(resource_type: str | None = None, *, not_type: str | None = None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        parsed = _parse_arm_id(value)
        if isinstance(parsed, str):
            return parsed
        if resource_type and parsed.resource_type.lower() != resource_type.lower():
            return f"expected a {resource_type} resource id, got a {parsed.resource_type} one ({_show(value)})"
        if not_type and parsed.resource_type.lower() == not_type.lower():
            return f"must not be a {not_type} resource id ({_show(value)})"
        return None

    return check


def _duration_check(value: str) -> str | None:
    parsed = _parse_duration(value)
    return parsed if isinstance(parsed, str) else None


def _parse_duration(value: str) -> IsoDuration | str:
    try:
        return IsoDuration(value, duration_to_timedelta(value))
    except ValueError as exc:
        return str(exc)


# --------------------------------------------------------------------------------------------------------------------
# Readers

_TOP_FIELDS = ("mode", "app_identity", "alert_topic", "policy", "break_glass", "vaults", "keys")
_POLICY_FIELDS = ("require_hsm", "min_rsa_size", "allowed_ops")
_PRINCIPAL_FIELDS = ("principal_id", "principal_type", "reason")
_VAULT_FIELDS = ("name", "url", "resource_id", "subscription_id", "resource_group")
_KEY_FIELDS = ("vault", "name", "kty", "size", "ops", "service", "identity", "role", "rotation", "consumers")
_IDENTITY_FIELDS = ("principal_id", "kind", "principal_type", "resource_id")
_ROTATION_FIELDS = ("rotate_after", "expire_after", "notify_before")
_CONSUMER_FIELDS = ("kind", "resource_id", "options")
_DEK_TABLE_OPTIONS = ("table", "partition_prefix")
_CANONICAL_OPS = {op.lower(): op for op in KEY_OPS}


def _read_ops(section: _Section, name: str, *, allowed: Collection[str] | None) -> tuple[str, ...] | None:
    """A non-empty list of distinct Key Vault operations (case-insensitive, returned canonical)."""
    values = section.items(name, required=True)
    if values is None:
        return None
    if not values:
        section.problem(name, "must list at least one operation")
        return None
    ops: list[str] = []
    ok = True
    for value in values:
        op = _CANONICAL_OPS.get(value.strip().lower()) if isinstance(value, str) else None
        if op is None:
            section.problem(name, f"unknown key operation {_show(value)}; expected some of {', '.join(KEY_OPS)}")
            ok = False
        elif op in ops:
            section.problem(name, f"operation {op} is listed twice")
            ok = False
        elif allowed is not None and op not in allowed:
            section.problem(name, f"operation {op} is not allowed by policy.allowed_ops ({', '.join(allowed)})")
            ok = False
        else:
            ops.append(op)
    return tuple(ops) if ok else None


def _read_policy(root: _Section) -> Policy:
    section = root.section("policy", _POLICY_FIELDS, required=False)
    if section is None:
        return Policy()
    default = Policy()
    require_hsm = section.boolean("require_hsm", default.require_hsm)
    min_size = section.integer("min_rsa_size", required=False, default=default.min_rsa_size)
    if min_size is not None and min_size not in RSA_SIZES:
        section.problem("min_rsa_size", f"expected one of {', '.join(map(str, RSA_SIZES))}, got {min_size}")
        min_size = None
    ops = default.allowed_ops
    if section.raw("allowed_ops", required=False) is not _MISSING:
        ops = _read_ops(section, "allowed_ops", allowed=None) or default.allowed_ops
    return Policy(require_hsm=require_hsm, min_rsa_size=min_size or default.min_rsa_size, allowed_ops=ops)


def _read_principal_type(section: _Section, name: str) -> str | None:
    allowed = {t.value.lower(): t.value for t in PrincipalType}

    def check(value: str) -> str | None:
        return None if value.lower() in allowed else f"expected one of {', '.join(allowed.values())}, got {value!r}"

    return section.text(
        name,
        required=False,
        default=PrincipalType.SERVICE_PRINCIPAL.value,
        check=check,
        normalize=lambda v: allowed[v.lower()],
    )


def _read_break_glass(root: _Section) -> list[Principal]:
    principals: list[Principal] = []
    seen: set[str] = set()
    for path, data in _each_mapping(root, "break_glass", required=False):
        if data is None:
            continue
        section = _Section(data, path, root.problems, _PRINCIPAL_FIELDS)
        principal_id = section.text("principal_id", check=_guid_problem, normalize=str.lower)
        principal_type = _read_principal_type(section, "principal_type")
        reason = section.text("reason")
        if principal_id in seen:
            section.problem("principal_id", f"break-glass principal {principal_id} is listed twice")
        elif principal_id and principal_type and reason:
            seen.add(principal_id)
            principals.append(Principal(principal_id, principal_type, reason))
    return principals


def _read_vaults(root: _Section) -> dict[str, ManagedVault | None] | None:
    """Vaults by lower-case name; a declared but invalid vault maps to None (reported already), so keys that refer
    to it are not reported a second time. None when the list itself is missing or unusable."""
    if root.data.get("vaults") == []:
        root.problem("vaults", "must list at least one vault")
    entries = _each_mapping(root, "vaults", required=True)
    if not entries:
        return None
    vaults: dict[str, ManagedVault | None] = {}
    hosts: dict[str, str] = {}
    for path, data in entries:
        if data is None:
            continue
        section = _Section(data, path, root.problems, _VAULT_FIELDS)
        name = section.text("name", check=_vault_name_problem)
        if name and name.lower() in vaults:
            section.problem("name", f"vault {name!r} is listed twice")
            continue
        vault = _read_vault(section, name)
        if name:
            vaults[name.lower()] = vault
        if vault is not None:
            if vault.host in hosts:
                section.problem("url", f"vault host {vault.host} is also used by vault {hosts[vault.host]!r}")
            hosts[vault.host] = vault.name
    return vaults


def _read_vault(section: _Section, name: str | None) -> ManagedVault | None:
    """A vault is placed by resource_id, or by subscription_id + resource_group (its resource_id is built)."""
    has_url = section.raw("url", required=False) is not _MISSING
    has_id = section.raw("resource_id", required=False) is not _MISSING
    url = section.text("url", required=False, check=_vault_url_problem)
    resource_id = section.text("resource_id", required=False, check=_arm_id_check(VAULT_RESOURCE_TYPE))
    subscription = section.text("subscription_id", required=False, check=_guid_problem, normalize=str.lower)
    group = section.text("resource_group", required=False, check=_resource_group_problem)
    if not has_id:
        for field_name in ("subscription_id", "resource_group"):
            if section.raw(field_name, required=False) is _MISSING:
                section.problem(field_name, "required field is missing (or give the vault's resource_id)")
    if name is None or (has_url and url is None):
        return None
    if not has_id:
        if subscription is None or group is None:
            return None
        resource_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{VAULT_RESOURCE_TYPE}/{name}"
    elif resource_id is None:
        return None
    else:
        parsed = _parse_arm_id(resource_id)
        assert isinstance(parsed, _ArmId)  # checked above
        ok = True
        if parsed.name.lower() != name.lower():
            section.problem("resource_id", f"names vault {parsed.name!r}, not {name!r}")
            ok = False
        if subscription and subscription != parsed.subscription_id:
            section.problem("subscription_id", f"{subscription} differs from the subscription in resource_id")
            ok = False
        if group and group.lower() != parsed.resource_group.lower():
            section.problem("resource_group", f"{group!r} differs from the resource group in resource_id")
            ok = False
        if not ok:
            return None
        subscription, group = parsed.subscription_id, parsed.resource_group
    url = (url or f"https://{name}.vault.azure.net").rstrip("/")
    return ManagedVault(name, url, resource_id, subscription, group)


def _read_keys(
    root: _Section,
    vaults: dict[str, ManagedVault | None] | None,
    policy: Policy,
    break_glass: list[Principal],
    app_identity: str | None,
) -> list[ManagedKey]:
    """Every key, then the rules that span keys: unique names per vault, one identity per key, one key per consumer."""
    if root.data.get("keys") == []:
        root.problem("keys", "must list at least one key")
    keys: list[tuple[str, ManagedKey]] = []
    names: dict[tuple[str, str], str] = {}  # (vault, key) -> path of the first
    identities: dict[str, str] = {}  # principal id -> key name
    break_glass_ids = {p.principal_id for p in break_glass}
    for path, data in _each_mapping(root, "keys", required=True):
        if data is None:
            continue
        section = _Section(data, path, root.problems, _KEY_FIELDS)
        name = section.text("name", check=_key_name_problem)
        key = _read_key(section, name, vaults, policy)
        vault_name = data.get("vault").strip() if isinstance(data.get("vault"), str) else None
        if name and vault_name:
            slot = (vault_name.lower(), name.lower())
            if slot in names:
                section.problem("name", f"duplicate key name {name!r} in vault {vault_name!r} (also {names[slot]})")
            else:
                names[slot] = path
        identity = data.get("identity")
        principal_id = identity.get("principal_id") if isinstance(identity, Mapping) else None
        if isinstance(principal_id, str) and _GUID.fullmatch(principal_id.strip()):
            principal_id = principal_id.strip().lower()
            where = "identity.principal_id"
            if principal_id in identities:
                section.problem(
                    where,
                    f"identity {principal_id} already uses key {identities[principal_id]!r}; "
                    "each identity may use exactly one key",
                )
            else:
                identities[principal_id] = name or path
            if principal_id in break_glass_ids:
                section.problem(where, f"{principal_id} is also a break-glass principal; keep the two apart")
            if app_identity and principal_id == app_identity:
                section.problem(where, f"{principal_id} is the app's own identity (app_identity), not a consumer")
        if key is not None:
            keys.append((path, key))
    _check_shared_consumers(root.problems, keys)
    return [key for _, key in keys]


def _check_shared_consumers(problems: _Problems, keys: list[tuple[str, ManagedKey]]) -> None:
    """An Azure resource holds one key, and two keys whose DEK partitions could start alike in one table would each
    claim the other's DEKs: both are reported on the later key."""
    resources: dict[str, str] = {}
    prefixes: list[tuple[str, str, str]] = []  # (table, prefix, key)
    for path, key in keys:
        for consumer in key.consumers:
            if consumer.kind is not ConsumerKind.DEK_TABLE:
                resource = normalize_scope(consumer.resource_id or "")
                if resource in resources:
                    problems.add(
                        f"{path}.consumers",
                        f"{consumer.kind.value} {consumer.resource_id} is already a consumer of key "
                        f"{resources[resource]!r}",
                    )
                resources.setdefault(resource, key.name)
                continue
            table, prefix = consumer.options["table"].lower(), consumer.options["partition_prefix"]
            for other_table, other_prefix, other_key in prefixes:
                overlap = prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
                if other_key != key.name and table == other_table and overlap:
                    problems.add(
                        f"{path}.consumers",
                        f"dek-table partition prefix {prefix!r} overlaps {other_prefix!r} of key {other_key!r} "
                        f"in table {consumer.options['table']!r}",
                    )
            prefixes.append((table, prefix, key.name))


def _describe(consumer: Consumer) -> str:
    if consumer.kind is ConsumerKind.DEK_TABLE:
        return f"dek-table {consumer.options['table']!r} prefix {consumer.options['partition_prefix']!r}"
    return f"{consumer.kind.value} {consumer.resource_id}"


def _read_key(
    section: _Section, name: str | None, vaults: dict[str, ManagedVault | None] | None, policy: Policy
) -> ManagedKey | None:
    vault = _read_vault_ref(section, vaults)
    kty = section.text("kty", check=_kty_check(policy), normalize=str.upper)
    size = section.integer("size")
    if size is not None and (size not in RSA_SIZES or size < policy.min_rsa_size):
        allowed = ", ".join(str(s) for s in RSA_SIZES if s >= policy.min_rsa_size)
        section.problem("size", f"RSA size {size} is not allowed; expected one of {allowed} (policy.min_rsa_size)")
        size = None
    ops = _read_ops(section, "ops", allowed=policy.allowed_ops)
    service = section.text(
        "service",
        check=lambda v: None if _SERVICE_NAME.fullmatch(v) else f"not a valid service name ({_show(v)})",
    )
    identity = _read_identity(section)
    role = _read_role(section, ops)
    consumers = _read_consumers(section, name)
    mysql = any(c.kind == ConsumerKind.MYSQL_FLEXIBLE_SERVER for c in consumers or ())
    rotation = _read_rotation(section, forbid_expiry=mysql)
    parts = (name, vault, kty, size, ops, service, identity, role, rotation, consumers)
    if any(p is None for p in parts):
        return None
    return ManagedKey(name, vault, kty, size, ops, service, identity, role, rotation, consumers)  # type: ignore[arg-type]


def _read_vault_ref(section: _Section, vaults: dict[str, ManagedVault | None] | None) -> ManagedVault | None:
    name = section.text("vault")
    if name is None or vaults is None:
        return None
    if name.lower() not in vaults:
        known = ", ".join(repr(v.name) for v in vaults.values() if v) or "none"
        section.problem("vault", f"unknown vault {name!r} (vaults: {known})")
        return None
    return vaults[name.lower()]  # None when that vault entry was invalid (reported there)


def _kty_check(policy: Policy) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        kty = value.upper()
        if kty not in KEY_TYPES:
            return f"unsupported key type {value!r}; expected RSA-HSM or RSA"
        if kty == "RSA" and policy.require_hsm:
            return "software-protected key type RSA is not allowed while policy.require_hsm is true; use RSA-HSM"
        return None

    return check


def _read_identity(key: _Section) -> Identity | None:
    section = key.section("identity", _IDENTITY_FIELDS)
    if section is None:
        return None
    principal_id = section.text("principal_id", check=_guid_problem, normalize=str.lower)
    kind = section.choice("kind", IdentityKind)
    principal_type = _read_principal_type(section, "principal_type")
    if principal_type is not None and principal_type != PrincipalType.SERVICE_PRINCIPAL.value:
        section.problem("principal_type", f"a managed identity is a ServicePrincipal, not {principal_type!r}")
        principal_type = None
    if kind is IdentityKind.USER_ASSIGNED:
        check = _arm_id_check(USER_ASSIGNED_IDENTITY_TYPE)
    else:  # system-assigned: the resource that owns the identity (or kind was bad: check the form only)
        check = _arm_id_check(not_type=USER_ASSIGNED_IDENTITY_TYPE if kind else None)
    resource_id = section.text("resource_id", check=check)
    if None in (principal_id, kind, principal_type, resource_id):
        return None
    return Identity(principal_id, kind, resource_id, principal_type)  # type: ignore[arg-type]


def _read_role(key: _Section, ops: tuple[str, ...] | None) -> BuiltInRole | None:
    value = key.text("role")
    if value is None:
        return None
    role = role_by_id(value) if _GUID.fullmatch(value.rsplit("/", 1)[-1]) else ROLES_BY_NAME.get(value.lower())
    if role is None:
        known = ", ".join(sorted(r.name for r in ROLES_BY_NAME.values()))
        key.problem("role", f"unknown role {value!r}; expected a Key Vault built-in role by name or GUID ({known})")
        return None
    if "*" in role.key_data_actions:
        key.problem(
            "role",
            f"{role.name!r} can also manage, delete and purge keys; a consumer needs only "
            f"{CRYPTO_SERVICE_ENCRYPTION_USER.name!r}",
        )
        return None
    missing = [op for op in ops or () if KEY_OPS[op] and not role.grants(KEY_OPS[op])]
    if missing:
        key.problem("role", f"{role.name!r} does not grant {', '.join(missing)}, which the key's ops need")
        return None
    return role


def _read_rotation(key: _Section, *, forbid_expiry: bool = False) -> Rotation | None:
    """`forbid_expiry` for a key a MySQL flexible server consumes: Microsoft requires its key to have no expiration
    date (the server goes Inaccessible when it passes), so such a key rotates on `rotate_after` alone."""
    section = key.section("rotation", _ROTATION_FIELDS)
    if section is None:
        return None

    def duration(name: str, default: str | None = None) -> IsoDuration | None:
        text = section.text(name, required=default is None, default=default, check=_duration_check)
        return None if text is None else _parse_duration(text)  # type: ignore[return-value]

    if forbid_expiry:
        ok = True
        for name in ("expire_after", "notify_before"):
            if section.raw(name, False) is not _MISSING:
                section.problem(
                    name,
                    "not allowed on a key consumed by a MySQL flexible server: Microsoft requires its key to have "
                    "no expiration date (the server goes Inaccessible when it expires); rotate on rotate_after only",
                )
                ok = False
        rotate = duration("rotate_after")
        if rotate and rotate.delta < MIN_ROTATE_AFTER:
            section.problem("rotate_after", f"{rotate} is below Key Vault's minimum of 7 days after creation")
            ok = False
        return Rotation(rotate, None, None) if ok and rotate else None

    rotate, expire, notify = duration("rotate_after"), duration("expire_after"), duration("notify_before", "P30D")
    ok = None not in (rotate, expire, notify)
    if rotate and rotate.delta < MIN_ROTATE_AFTER:
        section.problem("rotate_after", f"{rotate} is below Key Vault's minimum of 7 days after creation")
        ok = False
    if expire and expire.delta < MIN_EXPIRE_AFTER:
        section.problem("expire_after", f"{expire} is below Key Vault's minimum expiry of 28 days")
        ok = False
    if rotate and expire and rotate.delta > expire.delta - MIN_ROTATE_BEFORE_EXPIRY:
        section.problem("rotate_after", f"{rotate} must be at least 7 days before expire_after ({expire})")
        ok = False
    if notify and notify.delta < MIN_NOTIFY_BEFORE:
        section.problem("notify_before", f"{notify} is below Key Vault's minimum of 7 days before expiry")
        ok = False
    if notify and expire and notify.delta >= expire.delta:
        section.problem("notify_before", f"{notify} must be shorter than expire_after ({expire})")
        ok = False
    return Rotation(rotate, expire, notify) if ok else None  # type: ignore[arg-type]


def _read_consumers(key: _Section, key_name: str | None) -> tuple[Consumer, ...] | None:
    consumers: list[Consumer] = []
    ok = True
    for path, data in _each_mapping(key, "consumers", required=False):
        if data is None:
            ok = False
            continue
        consumer = _read_consumer(_Section(data, path, key.problems, _CONSUMER_FIELDS), key_name)
        if consumer is None:
            ok = False
        elif consumer in consumers:
            key.problem("consumers", f"{_describe(consumer)} is listed twice")
            ok = False
        else:
            consumers.append(consumer)
    return tuple(consumers) if ok else None


def _read_consumer(section: _Section, key_name: str | None) -> Consumer | None:
    kind = section.choice("kind", ConsumerKind)
    if kind is None:
        return None
    options = section.mapping("options")
    if kind is ConsumerKind.DEK_TABLE:
        if section.raw("resource_id", required=False) is not _MISSING:
            section.problem("resource_id", "a dek-table consumer has no resource id (it lives in the app's DEK store)")
            return None
        return _read_dek_table(section, options, key_name)
    resource_id = section.text("resource_id", check=_arm_id_check(CONSUMER_RESOURCE_TYPES[kind]))
    return None if resource_id is None else Consumer(kind, resource_id, options)


def _read_dek_table(section: _Section, options: dict[str, Any], key_name: str | None) -> Consumer | None:
    ok = True
    for name in options:
        if name not in _DEK_TABLE_OPTIONS:
            close = difflib.get_close_matches(name, _DEK_TABLE_OPTIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected {' or '.join(_DEK_TABLE_OPTIONS)}"
            section.problem(f"options.{name}", f"unknown option ({hint})")
            ok = False
    table = options.get("table")
    if not isinstance(table, str) or not table.strip():
        section.problem("options.table", "required option is missing (the DEK registry's table name)")
        ok = False
    elif not _TABLE_NAME.fullmatch(table.strip()):
        section.problem("options.table", f"not a valid table name ({_show(table)}): 3-63 letters/digits, letter first")
        ok = False
    prefix = options.get("partition_prefix", key_name)
    if not isinstance(prefix, str) or not prefix.strip() or re.search(r"[/\\#?\x00-\x1f\x7f]", prefix):
        section.problem("options.partition_prefix", f"not a valid partition prefix ({_show(prefix)})")
        ok = False
    if not ok:
        return None
    return Consumer(ConsumerKind.DEK_TABLE, None, {"table": table.strip(), "partition_prefix": prefix.strip()})
