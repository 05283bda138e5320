"""The `deliver_alerts` handler: one queued alert -> one CloudEvent on the alert topic, and its delivery state in the
alert log (what `GET /api/alerts` and the status page show)."""

from __future__ import annotations

from dataclasses import replace

from shared.alertlog import AlertEntry, AlertState, check_alert_id, new_alert_id
from shared.alerts import alert_from_message, log_entry, note
from shared.errors import InvalidInput, MalformedMessage
from shared.model import Alert
from shared.ports import AlertLog, Alerts, Clock
from shared.telemetry import NO_TELEMETRY, Telemetry, names


def deliver_alert(
    message: object,
    *,
    publisher: Alerts,
    alert_log: AlertLog | None = None,
    clock: Clock | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> Alert:
    """Publish a queued alert. MalformedMessage (never worth a retry) when the message is not an alert; anything the
    publisher raises propagates, so the host retries the message and, after maxDequeueCount, poisons it. Each
    attempt is noted in the alert log (sent, or failed with the error's code); a `sent` entry is never marked failed
    again by a duplicate delivery's failure (at-least-once: the alert already went out)."""
    try:
        alert = alert_from_message(message)
    except InvalidInput as exc:
        raise MalformedMessage(exc.field, exc.reason) from exc
    entry = _entry(message, alert, alert_log, clock)
    try:
        publisher.publish(alert)
    except Exception as exc:
        if entry is not None and entry.state is not AlertState.SENT:
            error = getattr(exc, "code", type(exc).__name__)
            note(alert_log, "put", _attempted(entry, clock, AlertState.FAILED, error))
        raise
    if entry is not None:
        note(alert_log, "put", _attempted(entry, clock, AlertState.SENT, None))
    key = alert.data.get("key") if isinstance(alert.data, dict) else None
    telemetry.event(
        names.ALERT_SENT, alert_type=alert.type, severity=alert.severity.value, key=key or "", outcome="sent"
    )
    return alert


def _entry(message: dict, alert: Alert, alert_log: AlertLog | None, clock: Clock | None) -> AlertEntry | None:
    """The alert's entry as logged when it was queued; a message queued before the log existed (no `id`) gets one."""
    if alert_log is None or clock is None:
        return None
    try:
        alert_id = check_alert_id(message.get("id"))
    except InvalidInput:
        alert_id = new_alert_id(clock.now())
    try:
        found = alert_log.get(alert_id)
    except Exception:  # an unreadable log costs the attempt count, never the alert
        found = None
    return found or log_entry(alert, alert_id, AlertState.PENDING, clock.now())


def _attempted(entry: AlertEntry, clock: Clock, state: AlertState, error: str | None) -> AlertEntry:
    return replace(entry, state=state, error=error, attempts=entry.attempts + 1, updated_at=clock.now())
