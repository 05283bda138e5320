"""A handler's ports, filled by parameter name from whatever provides them (in the app: bootstrap's Container).

Handlers name their dependencies as keyword-only parameters (`*, vault: KeyVault, clock: Clock`), so the parameter
name is the wiring: adding a handler adds no wiring code, and adding a port adds one property to the provider.
A parameter nobody provides is a programming error, raised when the handler is bound rather than when the first event
that needs it arrives. Binding reads no port: each is fetched when the bound handler is called, so a handler never
pays for (nor fails on the settings of) an adapter it does not ask for.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class PortParameter:
    name: str
    required: bool  # False when the handler gives it a default: filled only if something provides it


class UnboundPort(TypeError):
    """A handler asks for a port nobody provides (or for ports in a form that cannot be filled by name)."""

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@functools.cache
def port_parameters(handler: Handler) -> tuple[PortParameter, ...]:
    """The handler's keyword-only parameters. Inspected once per handler (signature inspection is not free)."""
    ports = []
    for p in inspect.signature(handler).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            raise UnboundPort(f"{_name(handler)}: **{p.name}: ports must be named keyword-only parameters")
        if p.kind is p.KEYWORD_ONLY:
            ports.append(PortParameter(p.name, p.default is p.empty))
    return tuple(ports)


@functools.cache
def properties_of(provider_type: type, exclude: frozenset[str] = frozenset()) -> frozenset[str]:
    """The public properties (plain or cached) of a provider class and its bases: its ports, by name."""
    names = {
        name
        for klass in provider_type.__mro__
        for name, attr in vars(klass).items()
        if not name.startswith("_") and isinstance(attr, property | functools.cached_property)
    }
    return frozenset(names - exclude)


@dataclass(frozen=True, eq=False)
class Bound:
    """A handler with the names of the ports to fetch from `source` on each call."""

    handler: Handler
    ports: tuple[str, ...]
    source: object

    def __call__(self, *args: Any) -> Any:
        return self.handler(*args, **{name: getattr(self.source, name) for name in self.ports})


def bind(handler: Handler, source: object, provided: frozenset[str]) -> Bound:
    """Bind `handler` to `source`, whose attributes named in `provided` are the ports. Builds nothing."""
    params = port_parameters(handler)
    missing = [p.name for p in params if p.required and p.name not in provided]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise UnboundPort(
            f"{_name(handler)}: no port named {names} (ports are provided by name: {', '.join(sorted(provided))})",
            missing,
        )
    return Bound(handler, tuple(p.name for p in params if p.name in provided), source)


def _name(handler: object) -> str:
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None) or repr(handler)
    return f"{module}.{qualname}" if module else qualname
