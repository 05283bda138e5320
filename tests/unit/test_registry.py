"""The event-type -> handler registry and dispatch through it, with test-local handlers over fakes.

No capability registers a handler yet (rotation and the rest come later), so these handlers live here; what they
prove is the mechanism the real ones will use: registered once, checked for shape at registration, called with their
ports filled by name, and every event accounted for as handled, ignored or rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from functions.dispatch import dispatch
from functions.event_handlers import EVENT_HANDLERS
from functions.registry import HandlerRegistry, RegistryError
from shared.events import (
    EVENT_GRID,
    KeyExpired,
    KeyNearExpiry,
    Rejection,
    RejectReason,
    SubscriptionValidation,
)
from shared.ports import Clock, KeyVault
from tests.unit.fake_ports import FakePorts


@dataclass(frozen=True)
class Noted:
    """What the test handler did: a value, as real handlers return (Rotated, Skipped(reason), ...)."""

    key: str
    version_enabled: bool
    at: str


def on_near_expiry(event: KeyNearExpiry, *, vault: KeyVault, clock: Clock) -> Noted:
    current = vault.get_key(event.key_ref, event.version)
    return Noted(event.key_ref.name, current.enabled, clock.now().isoformat())


def near_expiry(world, key_name: str = "aks-encryption-key") -> KeyNearExpiry:
    key = world.inventory.key(key_name)
    version = world.vault.get_key(key.ref).version
    return KeyNearExpiry(
        event_id="evt-1",
        event_time=None,
        key=key,
        key_ref=key.ref,
        version=version,
        vault_name=world.inventory.vaults[0].name,
        nbf=None,
        exp=None,
        topic=None,
        schema=EVENT_GRID,
    )


def call_with(world):
    """The app's binding (Container.call, ports by parameter name) over the world's fakes."""
    return FakePorts(world).call


def test_a_registered_handler_is_called_with_its_ports_and_its_outcome_kept(world):
    registry = HandlerRegistry({KeyNearExpiry: on_near_expiry})
    outcome = dispatch(near_expiry(world), registry, call=call_with(world))
    assert outcome.status == "handled"
    assert outcome.event_type == "Microsoft.KeyVault.KeyNearExpiry"
    assert outcome.result == Noted("aks-encryption-key", True, world.clock.now().isoformat())
    assert "aks-encryption-key" in outcome.summary


def test_an_event_without_a_handler_is_ignored_and_says_which(world):
    registry = HandlerRegistry({KeyExpired: lambda event, *, vault: None})
    outcome = dispatch(near_expiry(world), registry, call=call_with(world))
    assert outcome.status == "ignored"
    assert outcome.summary.startswith("no handler yet for")
    assert outcome.result is None


def test_lookup_is_by_exact_type_so_a_sibling_event_is_not_handled(world):
    """KeyExpired and KeyNearExpiry share a base; a handler for one must never receive the other."""
    seen = []
    registry = HandlerRegistry({KeyExpired: lambda event, *, vault: seen.append(event)})
    dispatch(near_expiry(world), registry, call=call_with(world))
    assert seen == []


def test_rejections_and_the_handshake_never_reach_a_handler(world):
    called = []

    def call(handler, *args):
        called.append(handler)

    registry = HandlerRegistry({SubscriptionValidation: lambda event: "nope"})
    rejected = dispatch(
        Rejection(RejectReason.MALFORMED, "event: expected an object", event_type="x"), registry, call=call
    )
    handshake = dispatch(SubscriptionValidation("v1", None, "code", None, None, EVENT_GRID), registry, call=call)
    assert (rejected.status, handshake.status) == ("rejected", "ignored")
    assert called == []


def test_a_handlers_failure_propagates_so_event_grid_redelivers(world):
    def on_near(event: KeyNearExpiry, *, vault: KeyVault) -> None:
        raise TimeoutError("vault slow")

    registry = HandlerRegistry({KeyNearExpiry: on_near})
    with pytest.raises(TimeoutError):
        dispatch(near_expiry(world), registry, call=call_with(world))


def test_the_decorator_registers_and_returns_the_handler_unchanged():
    registry = HandlerRegistry()

    @registry.handles(KeyNearExpiry)
    def handler(event: KeyNearExpiry, *, clock: Clock) -> None:
        return None

    assert registry[KeyNearExpiry] is handler
    assert dict(registry) == {KeyNearExpiry: handler}
    assert len(registry) == 1


def test_one_handler_per_event_type():
    registry = HandlerRegistry({KeyNearExpiry: on_near_expiry})
    with pytest.raises(RegistryError, match=r"KeyNearExpiry: already handled by on_near_expiry"):
        registry.register(KeyNearExpiry, lambda event, *, vault: None)
    assert registry[KeyNearExpiry] is on_near_expiry


def _two_positional(event: KeyNearExpiry, vault: KeyVault) -> None: ...


def _no_input(*, vault: KeyVault) -> None: ...


def _star_args(event: KeyNearExpiry, *ports: object) -> None: ...


def _star_kwargs(event: KeyNearExpiry, **ports: object) -> None: ...


def _wrong_input(event: KeyExpired, *, vault: KeyVault) -> None: ...


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (_two_positional, r"_two_positional: takes the KeyNearExpiry as its one positional parameter \(it has 2\)"),
        (_no_input, r"_no_input: takes the KeyNearExpiry as its one positional parameter \(it has 0\)"),
        (_star_args, r"_star_args: \*ports: ports must be named keyword-only parameters"),
        (_star_kwargs, r"_star_kwargs: \*\*ports: ports must be named keyword-only parameters"),
        (_wrong_input, r"_wrong_input: registered for KeyNearExpiry but its input is annotated KeyExpired"),
    ],
)
def test_a_handler_of_the_wrong_shape_is_refused_at_registration(handler, message):
    with pytest.raises(RegistryError, match=message):
        HandlerRegistry({KeyNearExpiry: handler})


def test_an_input_annotated_with_a_base_type_is_accepted():
    from shared.events import KeyEvent

    def on_any_key_event(event: KeyEvent, *, vault: KeyVault) -> None: ...

    assert HandlerRegistry({KeyNearExpiry: on_any_key_event})[KeyNearExpiry] is on_any_key_event


def test_only_types_are_keys():
    with pytest.raises(RegistryError, match="register it for a type"):
        HandlerRegistry().register("Microsoft.KeyVault.KeyNearExpiry", on_near_expiry)  # type: ignore[arg-type]


def test_the_apps_registry_is_a_handler_registry():
    """The triggers dispatch through this one registry; capabilities add their lines to functions/event_handlers."""
    assert isinstance(EVENT_HANDLERS, HandlerRegistry)
