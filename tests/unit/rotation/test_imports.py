"""Keys imported from an on-premises HSM: the app asks for the next version (ImportDue, once per level, louder as the
deadline nears) and never makes one, never lets the vault make one, and reports one the vault made as critical."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from functions.compliance import IMPORT_TAG
from functions.rotation import IMPORT_DUE_ALERT, RotationStatus, on_near_expiry, rotate_from
from functions.sweep import run_sweep
from functions.sweep_rotation import sync_rotation_policies
from shared.errors import InvalidInput
from shared.events import KeyNearExpiry
from shared.inventory import InventoryError, KeyOrigin, parse_inventory
from shared.model import LifetimeAction, RotationActionType, RotationPolicy, Severity
from shared.rotation_policy import validate_rotation_policy
from tests.unit.conftest import build_world

ROOT = Path(__file__).resolve().parents[3]
AKS = "aks-encryption-key"  # expires after P180D, notify P30D: an imported key with a deadline
MYSQL = "mysql-encryption-key"  # never expires: its deadline is rotate_after (P90D) after creation
CONTACT = "pki-team@example.org"


def reference(**patches: dict) -> dict:
    data = yaml.safe_load((ROOT / "inventory" / "reference.yaml").read_text())
    for key in data["keys"]:
        key.update(patches.get(key["name"], {}))
    return data


def imported_inventory(*names: str):
    imported = {"origin": "imported", "import_contact": CONTACT}
    return parse_inventory(reference(**{n: imported for n in names}), source="reference.yaml")


@pytest.fixture
def world():
    return build_world(imported_inventory(AKS, MYSQL))


def versions(world, name: str) -> list[str]:
    return [v.version for v in world.vault.list_versions(world.key(name).ref)]


def import_due(world) -> list:
    return [a for a in world.alerts.published if a.type == IMPORT_DUE_ALERT]


# -- the inventory ---------------------------------------------------------------------------------------------------


def test_an_imported_key_needs_someone_to_import_it_and_a_generated_key_takes_no_contact():
    with pytest.raises(InventoryError) as err:
        parse_inventory(reference(**{AKS: {"origin": "imported"}}), source="reference.yaml")
    assert err.value.problems == [
        "reference.yaml: keys[aks-encryption-key].import_contact: required for an imported key: the app cannot make "
        "its next version and must name who imports it (an e-mail address or a team)"
    ]
    with pytest.raises(InventoryError) as err:
        parse_inventory(reference(**{AKS: {"import_contact": CONTACT}}), source="reference.yaml")
    assert err.value.problems == [
        "reference.yaml: keys[aks-encryption-key].import_contact: only an imported key (origin: imported) takes an "
        "import contact"
    ]
    with pytest.raises(InventoryError) as err:
        parse_inventory(reference(**{AKS: {"origin": "on-prem"}}), source="reference.yaml")
    assert err.value.problems == [
        "reference.yaml: keys[aks-encryption-key].origin: expected one of generated, imported, got 'on-prem'"
    ]


def test_origin_defaults_to_generated_and_an_imported_keys_policy_never_rotates():
    plain = parse_inventory(reference(), source="reference.yaml")
    assert {k.origin for k in plain.keys} == {KeyOrigin.GENERATED}
    assert all(any(a.action == RotationActionType.ROTATE for a in k.rotation.to_policy().actions) for k in plain.keys)
    inventory = imported_inventory(AKS, MYSQL)
    aks, mysql = inventory.key(AKS), inventory.key(MYSQL)
    assert aks.imported and aks.import_contact == CONTACT
    assert [a.action for a in aks.rotation.to_policy().actions] == [RotationActionType.NOTIFY]
    assert mysql.rotation.to_policy().actions == ()
    assert inventory.to_json()["keys"][0]["origin"] == "imported"


def test_a_policy_that_would_let_the_vault_generate_an_imported_keys_version_is_refused():
    rotate = RotationPolicy("P180D", (LifetimeAction(RotationActionType.ROTATE, time_after_create="P90D"),))
    validate_rotation_policy(rotate)  # fine for a generated key
    with pytest.raises(InvalidInput) as err:
        validate_rotation_policy(rotate, imported=True)
    assert err.value.field == "lifetime_actions"


# -- due: an alert, never a version ----------------------------------------------------------------------------------


def test_due_means_an_alert_at_each_level_once_and_never_a_new_version(world):
    before = versions(world, AKS)
    run_sweep(**world.sweep_ports())
    assert import_due(world) == []  # 180 days to expiry: not yet
    world.clock.advance(timedelta(days=151))  # inside notify_before (P30D)
    run_sweep(**world.sweep_ports())
    run_sweep(**world.sweep_ports())  # a second sweep at the same level says nothing more
    [warning] = [a for a in import_due(world) if a.data["key"] == AKS]
    assert warning.severity is Severity.WARNING
    assert warning.data["contact"] == CONTACT and warning.data["kty"] == "RSA-HSM" and warning.data["size"] == 2048
    assert warning.data["vault"] == world.key(AKS).vault.name and warning.data["tag"] == IMPORT_TAG
    assert warning.data["deadline"] and "az keyvault key import" in warning.data["how"]
    assert CONTACT in warning.message and "import its next version" in warning.message
    world.clock.advance(timedelta(days=23))  # within 7 days of expiry
    run_sweep(**world.sweep_ports())
    world.clock.advance(timedelta(days=7))  # expired
    run_sweep(**world.sweep_ports())
    run_sweep(**world.sweep_ports())
    levels = [a.severity for a in import_due(world) if a.data["key"] == AKS]
    assert levels == [Severity.WARNING, Severity.HIGH, Severity.CRITICAL]
    assert versions(world, AKS) == before  # nothing made, whatever the urgency
    assert not [a for a in world.alerts.published if a.type.startswith("CmkGuardian.Key.Rot")]


def test_a_key_that_never_expires_is_asked_for_by_its_rotate_after(world):
    world.clock.advance(timedelta(days=89))
    run_sweep(**world.sweep_ports())
    assert [a.severity for a in import_due(world) if a.data["key"] == MYSQL] == [Severity.HIGH]
    world.clock.advance(timedelta(days=1))
    run_sweep(**world.sweep_ports())
    assert [a.severity for a in import_due(world) if a.data["key"] == MYSQL] == [Severity.HIGH, Severity.CRITICAL]


def test_the_near_expiry_event_asks_for_the_import_as_the_sweep_would_and_shares_its_claim(world):
    managed = world.key(AKS)
    current = world.vault.get_key(managed.ref)
    world.clock.advance(timedelta(days=151))
    event = world.key_event(KeyNearExpiry, AKS, current.version)
    outcome = on_near_expiry(event, **world.rotation_ports())
    assert outcome.status is RotationStatus.IMPORT_DUE and outcome.alert.severity is Severity.WARNING
    again = on_near_expiry(world.key_event(KeyNearExpiry, AKS, current.version), **world.rotation_ports())
    assert again.status is RotationStatus.IMPORT_DUE and again.alert is None
    run_sweep(**world.sweep_ports())
    assert len([a for a in import_due(world) if a.data["key"] == AKS]) == 1
    assert versions(world, AKS) == [current.version]


def test_no_trigger_can_make_the_app_generate_a_version_of_an_imported_key(world):
    managed = world.key(AKS)
    current = world.vault.get_key(managed.ref)
    outcome = rotate_from(
        managed, current.version, trigger="operator:someone", reason="asked", **world.rotation_ports()
    )
    assert outcome.status is RotationStatus.REFUSED and "imported" in outcome.reason
    assert versions(world, AKS) == [current.version]


# -- the policy and the critical finding ----------------------------------------------------------------------------


def test_enforce_mode_takes_the_rotate_action_off_an_imported_keys_policy(world):
    managed = world.key(AKS)
    rotating = RotationPolicy(
        "P180D",
        (
            LifetimeAction(RotationActionType.ROTATE, time_after_create="P90D"),
            LifetimeAction(RotationActionType.NOTIFY, time_before_expiry="P30D"),
        ),
    )
    world.vault.set_rotation_policy(managed.ref, rotating)  # someone set it by hand
    assert "ImportedKeyRotates" in world.codes(AKS)
    [change] = [
        c
        for c in sync_rotation_policies(
            inventory=world.inventory, vault=world.vault, audit=world.audit, clock=world.clock
        )
        if c.key == AKS
    ]
    assert change.status == "set"
    policy = world.vault.get_rotation_policy(managed.ref)
    assert not any(a.action == RotationActionType.ROTATE for a in policy.actions)
    assert "ImportedKeyRotates" not in world.codes(AKS)


def test_a_version_the_vault_generated_on_an_imported_key_is_critical_and_an_imported_one_is_not(world):
    managed = world.key(AKS)
    assert "KeyVersionGenerated" not in world.codes(AKS)
    world.clock.advance(timedelta(seconds=1))
    generated = world.vault.rotate_key(managed.ref)  # copies the tag, but not the public key it names
    assert generated.tags.get(IMPORT_TAG)
    [found] = [f for f in world.report().findings if f.code == "KeyVersionGenerated"]
    assert found.severity is Severity.CRITICAL and found.detail["version"] == generated.version
    world.vault.update_version(managed.ref, generated.version, enabled=False)  # an operator disables it
    world.clock.advance(timedelta(seconds=1))
    world.vault.import_key(managed.ref, kty=managed.kty, size=managed.size, ops=managed.ops)
    assert "KeyVersionGenerated" not in world.codes(AKS)
    world.clock.advance(timedelta(seconds=1))
    untagged = world.vault.import_key(managed.ref, kty=managed.kty, size=managed.size, ops=managed.ops, tagged=False)
    [found] = [f for f in world.report().findings if f.code == "KeyVersionGenerated"]
    assert found.detail["version"] == untagged.version  # an import without the tag cannot be told from a generated one


def test_nothing_moves_onto_a_version_the_vault_generated_on_an_imported_key(world):
    from functions.rewrap import on_new_version
    from shared.events import KeyNewVersionCreated

    managed = world.key(AKS)
    first = world.vault.get_key(managed.ref)
    world.clock.advance(timedelta(seconds=1))
    generated = world.vault.rotate_key(managed.ref)
    event = world.key_event(KeyNewVersionCreated, AKS, generated.version)
    assert on_new_version(event, **world.rewrap_ports()).already == "not imported"
    outcome = next(d for d in run_sweep(**world.sweep_ports()).dependents if d.key == AKS)
    assert (outcome.unannounced, outcome.moved, outcome.resumed_shards) == (None, (), 0)
    assert not world.rewrap_queue.messages and not world.move_queue.messages
    des = next(c for c in managed.consumers if c.resource_id)
    assert world.consumers.get_state(des.kind.value, des.resource_id).key_url == first.key_id


def test_an_alert_that_could_not_be_recorded_is_asked_again_by_the_next_sweep(world):
    from shared.errors import ServiceUnavailable

    world.clock.advance(timedelta(days=151))
    append = world.audit.append

    def down(record):
        if record.action == "import-due":
            raise ServiceUnavailable("audit: table unavailable")
        return append(record)

    world.audit.append = down
    run_sweep(**world.sweep_ports())  # the sweep goes on; nothing was said
    assert import_due(world) == []
    world.audit.append = append
    run_sweep(**world.sweep_ports())
    assert [a.severity for a in import_due(world) if a.data["key"] == AKS] == [Severity.WARNING]
