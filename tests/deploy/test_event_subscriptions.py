"""The Event Grid subscriptions in infra/events/ send the app exactly the event types its handlers take, to
functions that exist and are Event Grid triggers, in the schema they parse."""

from __future__ import annotations

from functions.event_handlers import EVENT_HANDLERS
from shared.events import (
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    ROLE_ASSIGNMENT_DELETE,
    ROLE_ASSIGNMENT_WRITE,
    RoleAssignmentChanged,
)
from tests.deploy.templates import event_subscriptions
from tests.support.app_index import indexed_functions

# RoleAssignmentChanged is the one typed event without a single wire type: ARM reports role assignment changes as
# generic resource writes and deletes, told apart by data.operationName (filtered below).
WIRE_TYPES = {RoleAssignmentChanged: {RESOURCE_WRITE_SUCCESS, RESOURCE_DELETE_SUCCESS}}
FUNCTION_FOR_SOURCE = {"Microsoft.KeyVault.": "keyvault_events", "Microsoft.Resources.": "role_assignment_events"}


def handled_wire_types() -> set[str]:
    types: set[str] = set()
    for event_class in EVENT_HANDLERS:
        wire = WIRE_TYPES.get(event_class) or {getattr(event_class, "event_type", "")}
        assert all(wire), f"{event_class.__name__}: no wire type known; add it to WIRE_TYPES"
        types |= wire
    return types


def test_the_subscribed_event_types_are_exactly_those_the_handlers_take():
    subscriptions = event_subscriptions()
    subscribed = [t for s in subscriptions for t in s.event_types]
    assert len(subscribed) == len(set(subscribed)), "an event type is subscribed twice"
    assert set(subscribed) == handled_wire_types()


def test_each_source_goes_to_its_own_function():
    for subscription in event_subscriptions():
        for event_type in subscription.event_types:
            prefix = next(p for p in FUNCTION_FOR_SOURCE if event_type.startswith(p))
            assert subscription.function == FUNCTION_FOR_SOURCE[prefix], (subscription.file, event_type)


def test_role_assignment_events_are_filtered_to_role_assignment_changes():
    (roles,) = [s for s in event_subscriptions() if s.function == "role_assignment_events"]
    (only,) = roles.advanced_filters
    assert (only["operatorType"], only["key"]) == ("StringIn", "data.operationName")
    assert set(only["values"]) == {ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE}


def test_the_functions_subscribed_exist_and_are_event_grid_triggers():
    functions = indexed_functions()
    for subscription in event_subscriptions():
        assert subscription.function in functions, f"{subscription.file}: no function {subscription.function}"
        trigger = functions[subscription.function].get_bindings()[0]
        assert trigger.get_binding_name() == "eventGridTrigger", subscription.function
        assert subscription.endpoint_type == "AzureFunction"
        assert subscription.schema == "EventGridSchema"  # the triggers take func.EventGridEvent
