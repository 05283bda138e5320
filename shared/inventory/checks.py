"""Checks of single inventory values (GUIDs, names, URLs, ARM resource ids, ISO-8601 durations), each returning None
when the value is fine and otherwise a message saying what is wrong with it.

They are given to Section.text as `check=`; the field's path is added by the caller, so each message says only what
is wrong with the value and how to write it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.arm_ids import is_guid
from shared.inventory.model import IsoDuration
from shared.inventory.problems import shown
from shared.rotation_policy import duration_to_timedelta

_VAULT_NAME = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]")
_KEY_NAME = re.compile(r"[A-Za-z0-9-]{1,127}")
_RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+")
_ARM_SEGMENT = re.compile(r"[^/\s?#]+")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def guid_problem(value: str) -> str | None:
    return None if is_guid(value) else f"not a GUID ({shown(value)})"


def vault_name_problem(value: str) -> str | None:
    if _VAULT_NAME.fullmatch(value):
        return None
    return (
        f"not a valid vault name ({shown(value)}): 3-24 letters, digits and dashes, starting with a letter, "
        "ending with a letter or digit, no consecutive dashes"
    )


def key_name_problem(value: str) -> str | None:
    if _KEY_NAME.fullmatch(value):
        return None
    return f"not a valid key name ({shown(value)}): 1-127 letters, digits and dashes"


def resource_group_problem(value: str) -> str | None:
    if _RESOURCE_GROUP.fullmatch(value):
        return None
    return f"not a valid resource group name ({shown(value)})"


def _url_problem(value: str, *, allow_loopback_http: bool) -> str | None:
    parts = urlsplit(value)
    loopback = (parts.hostname or "") in _LOOPBACK_HOSTS
    if parts.scheme != "https" and not (allow_loopback_http and parts.scheme == "http" and loopback):
        allowed = "https (http only on 127.0.0.1/localhost)" if allow_loopback_http else "https"
        return f"URL must use {allowed} ({shown(value)})"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"URL has an invalid port ({shown(value)})"
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        return f"not a valid URL ({shown(value)})"
    return None


def vault_url_problem(value: str) -> str | None:
    message = _url_problem(value, allow_loopback_http=False)
    if message is None and urlsplit(value).path not in ("", "/"):
        return f"a vault URL has no path ({shown(value)}); expected e.g. https://kv-name.vault.azure.net"
    return message


def alert_url_problem(value: str) -> str | None:
    return _url_problem(value, allow_loopback_http=True)


@dataclass(frozen=True)
class ArmId:
    subscription_id: str
    resource_group: str
    resource_type: str  # e.g. Microsoft.Compute/diskEncryptionSets
    name: str


def parse_arm_id(value: str) -> ArmId | str:
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
        return f"not an ARM resource id ({shown(value)}); {expected}"
    subscription, group, namespace, rest = parts[2], parts[4], parts[6], parts[7:]
    if not is_guid(subscription) or subscription != subscription.strip():
        return f"not an ARM resource id ({shown(value)}): subscription {shown(subscription)} is not a GUID"
    if not _RESOURCE_GROUP.fullmatch(group):
        return f"not an ARM resource id ({shown(value)}): invalid resource group {shown(group)}"
    if not _NAMESPACE.fullmatch(namespace) or not all(_ARM_SEGMENT.fullmatch(s) for s in rest):
        return f"not an ARM resource id ({shown(value)}); {expected}"
    resource_type = "/".join([namespace, *rest[0::2]])
    return ArmId(subscription.lower(), group, resource_type, rest[-1])


def arm_id_check(resource_type: str | None = None, *, not_type: str | None = None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        parsed = parse_arm_id(value)
        if isinstance(parsed, str):
            return parsed
        if resource_type and parsed.resource_type.lower() != resource_type.lower():
            return f"expected a {resource_type} resource id, got a {parsed.resource_type} one ({shown(value)})"
        if not_type and parsed.resource_type.lower() == not_type.lower():
            return f"must not be a {not_type} resource id ({shown(value)})"
        return None

    return check


def duration_check(value: str) -> str | None:
    parsed = parse_duration(value)
    return parsed if isinstance(parsed, str) else None


def parse_duration(value: str) -> IsoDuration | str:
    try:
        return IsoDuration(value, duration_to_timedelta(value))
    except ValueError as exc:
        return str(exc)
