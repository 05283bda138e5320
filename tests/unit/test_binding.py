"""Ports bound to handlers by parameter name (bootstrap's Container.bind / call), over a Container of fakes.

What must hold: a handler gets exactly the ports it names; binding builds nothing and a call builds only what the
handler asks for; a parameter nobody provides fails at bind time, naming it; adding a port is one property.
"""

from __future__ import annotations

import pytest

from functions import alerting, api, sweep
from functions.access import events as access_events
from functions.access import reconcile as access
from functions.api import audit_log as audit_log
from functions.api import key_status as key_status
from functions.compliance import report as compliance
from functions.consumers import moves as consumer_moves
from functions.event_handlers import EVENT_HANDLERS
from functions.rewrap import poison as rewrap_poison
from functions.rewrap import worker as rewrap_worker
from functions.rotation import triggers as rotation_triggers
from shared.binding import UnboundPort, port_parameters
from shared.bootstrap import Container
from shared.errors import InvalidSetting
from shared.inventory import Inventory
from shared.model import Alert, Severity
from shared.ports import Clock, KeyVault
from shared.settings import Settings
from tests.unit.fake_ports import FakePorts

ALERT = Alert("CmkGuardian.Test", "/keys/aks-encryption-key", Severity.HIGH, "look", {})


def current_version(name: str, *, inventory: Inventory, vault: KeyVault) -> str:
    return vault.get_key(inventory.key(name).ref).version


def test_call_fills_keyword_only_ports_by_name(world):
    ports = FakePorts(world)
    assert (
        ports.call(current_version, "aks-encryption-key")
        == world.vault.get_key(world.key("aks-encryption-key").ref).version
    )
    assert sorted(ports.read) == ["inventory", "vault"]


def test_binding_builds_nothing_and_a_call_builds_only_what_is_asked(world):
    ports = FakePorts(world)
    bound = ports.bind(current_version)
    assert ports.read == []
    bound("mysql-encryption-key")
    assert "clock" not in ports.read and "access" not in ports.read and "publisher" not in ports.read


def test_ports_are_read_on_each_call_not_frozen_at_bind(world):
    """A port that fails to build (a missing setting) fails the call that needs it, not the binding."""

    class NoTopic(FakePorts):
        @property
        def publisher(self):
            raise InvalidSetting("CMK_ALERT_TOPIC_ENDPOINT", "no alert topic configured")

    ports = NoTopic(world)
    bound = ports.bind(alerting.deliver_alert)
    with pytest.raises(InvalidSetting, match="CMK_ALERT_TOPIC_ENDPOINT"):
        bound({})


def test_a_port_nobody_provides_fails_at_bind_time_naming_it(world):
    def on_rotate(event: object, *, vault: KeyVault, ledger: object) -> None:
        raise AssertionError("never called")

    ports = FakePorts(world)
    with pytest.raises(UnboundPort) as raised:
        ports.bind(on_rotate)
    message = str(raised.value)
    assert "on_rotate" in message and "'ledger'" in message
    assert "vault" in message  # what is provided, so the fix is obvious
    assert raised.value.missing == ("ledger",)
    assert ports.read == []  # and nothing was built on the way to finding out


def test_a_defaulted_parameter_is_filled_when_provided_and_left_alone_otherwise(world):
    def handler(*, clock: Clock, window_days: int = 30, alerts: object = None) -> tuple:
        return window_days, alerts

    ports = FakePorts(world)
    assert ports.call(handler) == (30, ports.fake_alerts)


def test_catch_all_keyword_parameters_are_refused():
    def handler(event: object, **ports: object) -> None: ...

    with pytest.raises(UnboundPort, match=r"\*\*ports"):
        Container(Settings.from_env({})).bind(handler)


def test_a_handler_is_inspected_once_and_its_binding_kept(world):
    def handler(*, clock: Clock) -> object:
        return clock

    ports = FakePorts(world)
    first = ports.bind(handler)
    misses = port_parameters.cache_info().misses
    assert ports.bind(handler) is first
    FakePorts(world).bind(handler)  # another container: the signature is not inspected again
    assert port_parameters.cache_info().misses == misses


def test_adding_a_port_is_adding_one_property(world):
    class WithLog(FakePorts):
        @property
        def log(self) -> list:
            return self._port("log", ["rotated"])

    def on_rotate(name: str, *, log: list, clock: Clock) -> str:
        return f"{name}: {log[0]}"

    ports = WithLog(world)
    assert "log" in ports.ports()
    assert ports.call(on_rotate, "aks") == "aks: rotated"


def test_the_real_container_offers_the_ports_handlers_name():
    provided = Container.ports()
    assert {"inventory", "vault", "access", "clock", "alerts", "publisher"} <= provided
    assert not provided & {"credential", "settings", "queue", "bind", "call", "ports"}


@pytest.mark.parametrize(
    "handler",
    [
        compliance.report_keys,
        key_status.keys_status,
        sweep.run_sweep,
        alerting.deliver_alert,
        rotation_triggers.rotate_now,
        audit_log.read_audit,
        rewrap_worker.rewrap_page,
        rewrap_poison.alert_poisoned_page,
        access.follow_up_check,
        access_events.reconcile_queued,
        consumer_moves.move_consumer,
        consumer_moves.alert_poisoned_move,
        api.key_detail,
        api.status_page,
        api.alerts_list,
        *EVENT_HANDLERS.values(),
    ],
    ids=lambda h: h.__qualname__,
)
def test_every_handler_the_app_calls_binds_without_building_anything(handler):
    """A wiring mistake in the app fails this test, not the first request; binding touches no setting or SDK."""
    container = Container(Settings.from_env({}))
    container.bind(handler)
    assert set(container.__dict__) == {"settings", "_lock", "_bound"}


def test_the_triggers_handlers_run_through_the_binding(world):
    """The three calls function_app makes, over fakes: the report, the sweep (alerting on drift), and delivery."""
    ports = FakePorts(world)
    report = ports.call(compliance.report_keys)
    assert {k.name for k in report.keys} == {"aks-encryption-key", "mysql-encryption-key"}

    world.vault.update_version(world.key("aks-encryption-key").ref, report.keys[0].current.version, enabled=False)
    outcome = ports.call(sweep.run_sweep)
    assert outcome.alert is not None and ports.fake_alerts.published == [outcome.alert]

    from shared.alerts import alert_to_message

    assert ports.call(alerting.deliver_alert, alert_to_message(ALERT)) == ALERT
    assert ports.fake_publisher.published == [ALERT]
    assert [e.state.value for e in ports.fake_alert_log.all()] == ["sent"]  # the alert log is wired to delivery
