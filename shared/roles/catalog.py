"""Role definitions read through ARM once per role and kept, so a sweep over many assignments costs one read per role.

Definitions change rarely (built-ins a few times a year, custom roles by hand), so a per-process cache with a
time-to-live is both cheap and fresh enough: an edited custom role is judged by its new permissions within the TTL.
A definition that does not exist is cached as such (an assignment naming it grants nothing); a failed read is not
cached, so the next report tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.arm_ids import role_definition_guid
from shared.errors import CmkError, NotFound
from shared.model import RoleAssignment
from shared.roles.definitions import RoleDefinition

if TYPE_CHECKING:  # shared.ports names shared.roles: a runtime import here would be a cycle
    from shared.ports import Clock

DEFAULT_TTL = timedelta(hours=1)


class RoleDefinitionSource(Protocol):
    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        """NotFound when ARM has no such definition."""


class RoleCatalog:
    """The RoleDefinitions port over any source of definitions (the ARM adapter, or a fake)."""

    def __init__(self, source: RoleDefinitionSource, clock: Clock, ttl: timedelta = DEFAULT_TTL) -> None:
        self._source = source
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[datetime, RoleDefinition | None]] = {}
        self.reads = 0  # how many times the source was asked: the cache's effect, visible to tests and benches

    def get(self, role_definition_id: str) -> RoleDefinition | None:
        """The definition, or None when it does not exist. Other errors (throttling, 403) propagate uncached."""
        guid = role_definition_guid(role_definition_id)
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(guid)
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1]
        self.reads += 1
        try:
            definition: RoleDefinition | None = self._source.get_role_definition(role_definition_id)
        except NotFound:
            definition = None
        with self._lock:
            self._cache[guid] = (now, definition)
        return definition


def definitions_for(assignments: Iterable[RoleAssignment], roles: Any) -> dict[str, RoleDefinition | None]:
    """Each assignment's role GUID -> its definition (None: no such role, grants nothing). A GUID whose definition
    could not be read is left out: the access judgements treat an absent GUID as an unreadable, unknown role."""
    definitions: dict[str, RoleDefinition | None] = {}
    for a in assignments:
        try:
            definitions[a.role_guid] = roles.get(a.role_definition_id)
        except (CmkError, ValueError):
            continue
    return definitions
