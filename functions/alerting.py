"""The `deliver_alerts` handler: one queued alert -> one CloudEvent on the alert topic."""

from __future__ import annotations

from shared.alerts import alert_from_message
from shared.model import Alert
from shared.ports import Alerts


def deliver_alert(message: object, *, publisher: Alerts) -> Alert:
    """Publish a queued alert. InvalidInput (never retried) for a malformed message; anything the publisher raises
    propagates, so the host retries the message and, after maxDequeueCount, poisons it."""
    alert = alert_from_message(message)
    publisher.publish(alert)
    return alert
