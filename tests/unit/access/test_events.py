"""Access-change events decide and enqueue (review H6): one `cmk-reconcile` message per key, each key once per event,
and the queue worker reconciles that key as the event used to, inside the trigger."""

from __future__ import annotations

import uuid

import pytest

from functions.access.events import on_role_assignment_changed, on_vault_access_policy_changed, reconcile_queued
from shared import roles
from shared.errors import MalformedMessage
from shared.events import RoleAssignmentChanged, VaultAccessPolicyChanged
from shared.events.values import EVENT_GRID

MYSQL = "mysql-encryption-key"


def _role_event(world, keys) -> RoleAssignmentChanged:
    return RoleAssignmentChanged(
        event_type="Microsoft.Resources.ResourceWriteSuccess",
        event_id=str(uuid.uuid4()),
        event_time=world.clock.now(),
        operation="write",
        assignment_id=f"{world.inventory.vaults[0].resource_id}/providers/Microsoft.Authorization/roleAssignments/x",
        scope=world.inventory.vaults[0].resource_id,
        affected_keys=tuple(keys),
        topic=None,
        schema=EVENT_GRID,
    )


def test_a_role_assignment_event_enqueues_each_key_under_its_scope_once_and_reads_nothing(world):
    keys = list(world.inventory.keys)
    outcome = on_role_assignment_changed(_role_event(world, [*keys, *keys]), reconcile_queue=world.reconcile_queue)
    sent = [m["key"] for m in world.reconcile_queue.visible()]
    assert sorted(sent) == sorted(f"{k.vault.name}/{k.name}" for k in keys) and len(sent) == len(set(sent))
    assert outcome.to_json()["enqueued"] == sent
    assert world.audit.all() == [] and world.alerts.published == []


def test_a_vault_access_policy_event_enqueues_every_key_of_that_vault(world):
    vault = world.inventory.vaults[0]
    event = VaultAccessPolicyChanged(str(uuid.uuid4()), world.clock.now(), vault, vault.name.upper(), None, EVENT_GRID)
    on_vault_access_policy_changed(event, inventory=world.inventory, reconcile_queue=world.reconcile_queue)
    expected = {f"{k.vault.name}/{k.name}" for k in world.inventory.keys if k.vault.name == vault.name}
    assert {m["key"] for m in world.reconcile_queue.visible()} == expected


def test_the_worker_reconciles_the_one_key_its_message_names(world):
    stranger = str(uuid.uuid4())
    world.grant(world.key(MYSQL).scope, stranger, roles.CRYPTO_USER)
    on_role_assignment_changed(_role_event(world, [world.key(MYSQL)]), reconcile_queue=world.reconcile_queue)
    [message] = world.reconcile_queue.drain()
    outcome = reconcile_queued(message, **world.access_ports(), access_checks=world.access_checks)
    assert outcome.key == MYSQL and outcome.status == "remediated"
    assert not any(a.principal_id == stranger for a in world.access.list_assignments(world.key(MYSQL).scope))
    assert world.access_checks.messages  # the follow-up is scheduled, as an event's reconcile schedules it
    again = reconcile_queued(message, **world.access_ports(), access_checks=world.access_checks)
    assert again.status == "compliant"  # a duplicate message decides from state: nothing more to do


@pytest.mark.parametrize(
    ("message", "field"),
    [(None, "version"), ({"version": 1}, "key"), ({"version": 1, "key": "nope/none"}, "key")],
)
def test_a_malformed_reconcile_message_is_refused_naming_the_field(world, message, field):
    with pytest.raises(MalformedMessage) as refused:
        reconcile_queued(message, **world.access_ports(), access_checks=world.access_checks)
    assert refused.value.field == field
