"""The alert outbox and its delivery handler, and the sweep's drift alert, over fakes."""

from __future__ import annotations

import uuid

import pytest

from functions.alerting import deliver_alert
from functions.sweep import DRIFT_ALERT_TYPE, run_sweep
from shared import roles
from shared.alerts import OutboxAlerts, alert_from_message, alert_to_message
from shared.errors import InvalidInput, MalformedMessage, ServiceUnavailable
from shared.model import Alert, Severity
from tests.fakes.outbound import FakeAlerts, FakeWorkQueue

ALERT = Alert("CmkGuardian.Test", "/keys/aks-encryption-key", Severity.HIGH, "something to look at", {"n": 1})


def test_outbox_round_trip_through_the_queue():
    queue = FakeWorkQueue()
    OutboxAlerts(queue).publish(ALERT)
    [message] = queue.drain()
    published = FakeAlerts()
    assert deliver_alert(message, publisher=published) == ALERT
    assert published.published == [ALERT]
    assert published.published[0].data == {"n": 1}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m.pop("type"), "type"),
        (lambda m: m.update(subject="  "), "subject"),
        (lambda m: m.update(severity="urgent"), "severity"),
        (lambda m: m.update(version=2), "version"),
        (lambda m: m.update(data=[1]), "data"),
        (lambda m: m.update(message=7), "message"),
    ],
)
def test_malformed_messages_name_the_field(mutate, field):
    message = alert_to_message(ALERT)
    mutate(message)
    with pytest.raises(InvalidInput) as err:
        alert_from_message(message)
    assert err.value.field == field


@pytest.mark.parametrize("message", [["x"], None, {"version": 1}])
def test_a_non_alert_is_malformed_and_nothing_is_published(message):
    publisher = FakeAlerts()
    with pytest.raises(MalformedMessage):
        deliver_alert(message, publisher=publisher)
    assert publisher.published == []


def test_a_publisher_refusal_is_not_mistaken_for_a_malformed_message():
    class RefusingTopic(FakeAlerts):
        def publish(self, alert):
            raise InvalidInput("events[0]", "the topic refused the event")

    with pytest.raises(InvalidInput) as err:
        deliver_alert(alert_to_message(ALERT), publisher=RefusingTopic())
    assert not isinstance(err.value, MalformedMessage)


def test_delivery_failure_propagates_so_the_host_retries():
    publisher = FakeAlerts()
    publisher.fail_next(1)
    with pytest.raises(ServiceUnavailable):
        deliver_alert(alert_to_message(ALERT), publisher=publisher)
    assert deliver_alert(alert_to_message(ALERT), publisher=publisher) == ALERT


def test_sweep_alerts_only_on_high_or_critical(world):
    import dataclasses

    from shared.inventory import Mode

    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)  # report drift, do not remove it
    alerts = FakeAlerts()
    deps = {k: v for k, v in world.sweep_ports().items() if k != "alerts"}
    assert run_sweep(**deps, alerts=alerts).alert is None
    world.grant(world.key("aks-encryption-key").scope, world.inventory.break_glass[0].principal_id)
    assert run_sweep(**deps, alerts=alerts).alert is None  # info only
    world.grant(world.key("mysql-encryption-key").scope, str(uuid.uuid4()), roles.CRYPTO_USER)
    outcome = run_sweep(**deps, alerts=alerts)
    assert [a.type for a in alerts.published] == ["CmkGuardian.Access.Violation", DRIFT_ALERT_TYPE]
    assert alerts.published[-1] == outcome.alert
    assert outcome.alert.type == DRIFT_ALERT_TYPE and outcome.alert.severity == Severity.HIGH
    assert outcome.alert.data["counts"] == {"AccessExtra": 1} and outcome.alert.data["audit_record_id"]
    assert "mysql-encryption-key" in outcome.alert.subject
