"""Alerts leave through an outbox: a handler enqueues, the `deliver_alerts` queue function publishes.

A handler's success (a rotation, a revocation) must never depend on the alert topic being reachable at that moment,
and an alert must never be lost because it was: the queue keeps it, the host retries it, and one that keeps failing
lands in the poison queue where an operator finds it.
"""

from __future__ import annotations

from typing import Any

from shared.errors import InvalidInput
from shared.model import Alert, Severity
from shared.ports import WorkQueue
from shared.untrusted import describe_value

ALERT_QUEUE = "cmk-alerts"
MESSAGE_VERSION = 1


def alert_to_message(alert: Alert) -> dict[str, Any]:
    return {
        "version": MESSAGE_VERSION,
        "type": alert.type,
        "subject": alert.subject,
        "severity": alert.severity.value,
        "message": alert.message,
        "data": dict(alert.data),
    }


def alert_from_message(message: object) -> Alert:
    """The inverse of alert_to_message; InvalidInput naming the field for anything else."""
    if not isinstance(message, dict):
        raise InvalidInput("message", f"must be a JSON object, got {type(message).__name__}")
    if message.get("version") != MESSAGE_VERSION:
        shown = describe_value(message.get("version"), quote=True)
        raise InvalidInput("version", f"must be {MESSAGE_VERSION}, got {shown}")
    for name in ("type", "subject", "message"):
        value = message.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(name, "must be a non-empty string")
    try:
        severity = Severity(message.get("severity"))
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        shown = describe_value(message.get("severity"), quote=True)
        raise InvalidInput("severity", f"must be one of {allowed}, got {shown}") from None
    data = message.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("data", "must be a JSON object")
    return Alert(message["type"], message["subject"], severity, message["message"], data)


class OutboxAlerts:
    """The Alerts port for handlers: publishing means enqueuing for the `deliver_alerts` function."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    def publish(self, alert: Alert) -> None:
        self._queue.send(alert_to_message(alert))
