"""The alert log as the outbox and `deliver_alerts` keep it: pending when queued, sent or failed per attempt, never
blocking the alert itself, and holding what the alert says, never its data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.alerting import deliver_alert
from shared.alertlog import AlertState
from shared.alerts import OutboxAlerts, alert_to_message
from shared.errors import CmkError, ServiceUnavailable
from shared.model import Alert, Severity
from tests.fakes.alertlog import FakeAlertLog
from tests.fakes.clock import FakeClock
from tests.fakes.outbound import FakeAlerts, FakeWorkQueue

ALERT = Alert(
    "CmkGuardian.Key.Rotated",
    "/keys/mysql-encryption-key",
    Severity.INFO,
    "mysql-encryption-key rotated",
    {"key": "mysql-encryption-key", "audit_record_id": "r1", "detail": "not for the log"},
)


class BrokenQueue:
    def send(self, message, *, delay_seconds=0):
        raise CmkError("queue: unreachable")


class BrokenLog(FakeAlertLog):
    def add(self, entry):
        raise ServiceUnavailable("table down")

    put = add

    def get(self, alert_id):
        raise ServiceUnavailable("table down")


@pytest.fixture
def parts():
    return FakeWorkQueue(), FakeAlertLog(), FakeClock()


def test_a_queued_alert_is_pending_then_sent_once_delivered(parts):
    queue, log, clock = parts
    OutboxAlerts(queue, log, clock).publish(ALERT)
    [entry] = log.all()
    assert (entry.state, entry.attempts, entry.key, entry.audit_record_id) == (
        AlertState.PENDING,
        0,
        "mysql-encryption-key",
        "r1",
    )
    assert "not for the log" not in str(entry.to_json())  # the log holds what the alert says, not its data
    [message] = queue.drain()
    assert message["id"] == entry.alert_id
    clock.advance(timedelta(seconds=5))
    published = FakeAlerts()
    deliver_alert(message, publisher=published, alert_log=log, clock=clock)
    [sent] = log.all()
    assert (sent.state, sent.attempts, sent.updated_at) == (AlertState.SENT, 1, clock.now())
    assert sent.queued_at == entry.queued_at and published.published == [ALERT]


def test_a_failed_attempt_is_failed_with_its_error_then_sent_on_the_retry(parts):
    queue, log, clock = parts
    OutboxAlerts(queue, log, clock).publish(ALERT)
    [message] = queue.drain()
    topic = FakeAlerts()
    topic.fail_next(1)
    with pytest.raises(ServiceUnavailable):
        deliver_alert(message, publisher=topic, alert_log=log, clock=clock)
    [failed] = log.all()
    assert (failed.state, failed.attempts, failed.error) == (AlertState.FAILED, 1, "ServiceUnavailable")
    deliver_alert(message, publisher=topic, alert_log=log, clock=clock)
    [sent] = log.all()
    assert (sent.state, sent.attempts, sent.error) == (AlertState.SENT, 2, None)


def test_a_duplicate_delivery_that_fails_never_takes_back_sent(parts):
    queue, log, clock = parts
    OutboxAlerts(queue, log, clock).publish(ALERT)
    [message] = queue.drain()
    topic = FakeAlerts()
    deliver_alert(message, publisher=topic, alert_log=log, clock=clock)
    topic.fail_next(1)
    with pytest.raises(ServiceUnavailable):
        deliver_alert(message, publisher=topic, alert_log=log, clock=clock)
    assert log.all()[0].state is AlertState.SENT


def test_an_alert_that_cannot_be_queued_is_logged_failed_and_the_error_raised(parts):
    _, log, clock = parts
    with pytest.raises(CmkError):
        OutboxAlerts(BrokenQueue(), log, clock).publish(ALERT)
    [entry] = log.all()
    assert entry.state is AlertState.FAILED and entry.error.startswith("not queued")


def test_a_log_that_cannot_be_written_never_stops_the_alert(parts, caplog):
    queue, _, clock = parts
    OutboxAlerts(queue, BrokenLog(), clock).publish(ALERT)
    [message] = queue.drain()
    published = FakeAlerts()
    assert deliver_alert(message, publisher=published, alert_log=BrokenLog(), clock=clock) == ALERT
    assert published.published == [ALERT]
    assert "alert log" in caplog.text


def test_a_message_queued_before_the_log_existed_is_logged_when_delivered(parts):
    _, log, clock = parts
    deliver_alert(alert_to_message(ALERT), publisher=FakeAlerts(), alert_log=log, clock=clock)
    [entry] = log.all()
    assert (entry.state, entry.type) == (AlertState.SENT, ALERT.type)
