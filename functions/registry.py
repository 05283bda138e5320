"""A typed map from an input's type to the one handler that answers it, checked when a handler is registered.

The check is about shape, so a wiring mistake fails when the app is indexed instead of on the first event of that
type, which may come months later: a handler takes the input as its one positional parameter and its ports as named
keyword-only parameters (bootstrap fills those by name), and each type has at most one handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Concatenate, TypeVar

E = TypeVar("E")
H = TypeVar("H", bound=Callable[..., Any])

Handler = Callable[..., Any]


class RegistryError(TypeError):
    """A handler that cannot be registered as it stands: a programming error, reported at import."""


class HandlerRegistry(Mapping[type, Handler]):
    """Input type -> handler. Read as a Mapping (dispatch looks the exact type up); written through register()."""

    def __init__(self, handlers: Mapping[type, Handler] | None = None) -> None:
        self._handlers: dict[type, Handler] = {}
        for event_type, handler in (handlers or {}).items():
            self.register(event_type, handler)

    def register(self, event_type: type[E], handler: Callable[Concatenate[E, ...], Any]) -> None:
        if not isinstance(event_type, type):
            raise RegistryError(f"{_name(handler)}: register it for a type, not {event_type!r}")
        if event_type in self._handlers:
            raise RegistryError(
                f"{event_type.__name__}: already handled by {_name(self._handlers[event_type])}; "
                f"one handler per type, so {_name(handler)} cannot be added"
            )
        _check_shape(event_type, handler)
        self._handlers[event_type] = handler

    def handles(self, event_type: type[E]) -> Callable[[H], H]:
        """Decorator form of register(), returning the handler unchanged."""

        def decorate(handler: H) -> H:
            self.register(event_type, handler)
            return handler

        return decorate

    def __getitem__(self, event_type: type) -> Handler:
        return self._handlers[event_type]

    def __iter__(self) -> Iterator[type]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


def _check_shape(event_type: type, handler: Handler) -> None:
    name = _name(handler)
    if not callable(handler):
        raise RegistryError(f"{event_type.__name__}: the handler {handler!r} is not callable")
    params = list(inspect.signature(handler).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = [p for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(positional) != 1:
        raise RegistryError(
            f"{name}: takes the {event_type.__name__} as its one positional parameter "
            f"(it has {len(positional)}); ports go after `*`, by name"
        )
    if variadic:
        stars = "*" if variadic[0].kind is inspect.Parameter.VAR_POSITIONAL else "**"
        raise RegistryError(f"{name}: {stars}{variadic[0].name}: ports must be named keyword-only parameters")
    annotation = positional[0].annotation
    if annotation is not inspect.Parameter.empty and not _names_type(annotation, event_type):
        raise RegistryError(f"{name}: registered for {event_type.__name__} but its input is annotated {annotation}")


def _names_type(annotation: object, event_type: type) -> bool:
    """True when the annotation is the type or one of its bases (annotations are strings under postponed
    evaluation, and evaluating them would import what the handler module only imports for type checking)."""
    bases = event_type.__mro__
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in {b.__name__ for b in bases}
    return annotation in bases


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
