"""The `deliver_alerts` handler: one queued alert -> one CloudEvent on the alert topic."""

from __future__ import annotations

from shared.alerts import alert_from_message
from shared.errors import InvalidInput, MalformedMessage
from shared.model import Alert
from shared.ports import Alerts
from shared.telemetry import NO_TELEMETRY, Telemetry, names


def deliver_alert(message: object, *, publisher: Alerts, telemetry: Telemetry = NO_TELEMETRY) -> Alert:
    """Publish a queued alert. MalformedMessage (never worth a retry) when the message is not an alert; anything the
    publisher raises propagates, so the host retries the message and, after maxDequeueCount, poisons it."""
    try:
        alert = alert_from_message(message)
    except InvalidInput as exc:
        raise MalformedMessage(exc.field, exc.reason) from exc
    publisher.publish(alert)
    key = alert.data.get("key") if isinstance(alert.data, dict) else None
    telemetry.event(
        names.ALERT_SENT, alert_type=alert.type, severity=alert.severity.value, key=key or "", outcome="sent"
    )
    return alert
