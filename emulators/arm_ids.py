"""ARM resource ids compared the way Azure compares them: case-insensitively, on whole path segments.

Scope inheritance (an assignment on a vault applies to every key in it, but not to a vault whose name merely starts
with the same letters) depends on getting this exactly right, so it lives in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def is_guid(value: object) -> bool:
    return isinstance(value, str) and GUID.fullmatch(value) is not None


def segments(resource_id: str) -> list[str]:
    return [part for part in resource_id.split("/") if part]


def normalize(resource_id: str) -> str:
    """One leading slash, no empty segments, no trailing slash; the root scope is "/"."""
    return "/" + "/".join(segments(resource_id))


def is_at_or_above(ancestor: str, scope: str) -> bool:
    """True when `ancestor` is `scope` itself or one of its parents (the root "/" is above everything)."""
    upper = [s.lower() for s in segments(ancestor)]
    lower = [s.lower() for s in segments(scope)]
    return lower[: len(upper)] == upper


def same_id(a: str, b: str) -> bool:
    return normalize(a).lower() == normalize(b).lower()


@dataclass(frozen=True)
class ResourceId:
    """`/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}...]`."""

    subscription_id: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def resource_type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def __str__(self) -> str:
        pairs = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"{self.resource_group_id}/providers/{self.namespace}/{pairs}"


def parse_resource_id(resource_id: str) -> ResourceId | None:
    """A resource-group-level resource id, or None when `resource_id` is not one (e.g. a scope or a typo)."""
    parts = segments(resource_id)
    if len(parts) < 8 or len(parts) % 2 == 1:
        return None
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" or parts[4].lower() != "providers":
        return None
    rest = parts[6:]
    if any(p.lower() == "providers" for p in rest[::2]):
        return None  # an extension resource (e.g. .../providers/Microsoft.Authorization/...) is not a plain resource
    return ResourceId(parts[1], parts[3], parts[5], tuple(rest[::2]), tuple(rest[1::2]))


def subscription_of(scope: str) -> str | None:
    parts = segments(scope)
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1]
    return None


def resource_group_of(scope: str) -> str | None:
    parts = segments(scope)
    if len(parts) >= 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return parts[3]
    return None
