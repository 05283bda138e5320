"""Alerts leave through an outbox: a handler enqueues, the `deliver_alerts` queue function publishes.

A handler's success (a rotation, a revocation) must never depend on the alert topic being reachable at that moment,
and an alert must never be lost because it was: the queue keeps it, the host retries it, and one that keeps failing
lands in the poison queue where an operator finds it.

A queue message holds at most 64 KiB, counted after base64, so an alert is a summary: counts and the id of the audit
record that holds the details (GET /api/keys has the rest). `alert_to_message` enforces a hard cap well below the
limit whatever a handler put in it, and `publish_or_record` is how a handler alerts: an alert that cannot be queued
is logged and audited, never raised into the act it reports.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.alertlog import AlertEntry, AlertState, cut_message, new_alert_id
from shared.audit import AuditRecord
from shared.errors import InvalidInput
from shared.model import Alert, Severity
from shared.ports import AlertLog, Alerts, AuditTrail, Clock, WorkQueue
from shared.untrusted import describe_value

ALERT_QUEUE = "cmk-alerts"
MESSAGE_VERSION = 1
MAX_ALERT_JSON_BYTES = 16 * 1024  # far below the queue's 64 KiB, which counts the base64 (4/3 of the JSON)


MAX_MESSAGE_CHARS = 1_000  # an alert's message line, once it had to be cut
MAX_SCALAR_CHARS = 256  # a string kept in a cut alert's data
SUMMARY_FIELDS = ("audit_record_id", "revocation_id", "key", "action", "state", "phase", "counts")
log = logging.getLogger("cmk.alerts")


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message).encode("utf-8"))


def _small(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_SCALAR_CHARS
    if isinstance(value, dict):  # counts: a few names with numbers
        return len(value) <= 50 and all(isinstance(v, int) and len(str(k)) <= 64 for k, v in value.items())
    return False


def alert_to_message(alert: Alert, alert_id: str | None = None) -> dict[str, Any]:
    """The queue message for an alert, never above MAX_ALERT_JSON_BYTES of JSON: one that would be is cut to its
    small fields (then to its summary fields), its message shortened, and marked `truncated`. `alert_id` is its row
    in the alert log, where delivery records whether it was sent."""
    message = {
        "version": MESSAGE_VERSION,
        **({"id": alert_id} if alert_id else {}),
        "type": alert.type[:MAX_SCALAR_CHARS],
        "subject": alert.subject[:MAX_SCALAR_CHARS],
        "severity": alert.severity.value,
        "message": alert.message,
        "data": dict(alert.data),
    }
    if _size(message) <= MAX_ALERT_JSON_BYTES:
        return message
    if len(alert.message) > MAX_MESSAGE_CHARS:
        message["message"] = alert.message[: MAX_MESSAGE_CHARS - 1] + "…"
    message["data"] = {k: v for k, v in alert.data.items() if _small(v)} | {"truncated": True}
    if _size(message) > MAX_ALERT_JSON_BYTES:
        message["data"] = {k: v for k, v in message["data"].items() if k in SUMMARY_FIELDS} | {"truncated": True}
    return message


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


def log_entry(alert: Alert, alert_id: str, state: AlertState, at: datetime, **changes: Any) -> AlertEntry:
    """The alert log's row for `alert`: what it says, never its data (the audit record id points at the details)."""
    record_id = alert.data.get("audit_record_id")
    key = alert.data.get("key")
    return AlertEntry(
        alert_id=alert_id,
        type=alert.type[:MAX_SCALAR_CHARS],
        subject=alert.subject[:MAX_SCALAR_CHARS],
        severity=alert.severity.value,
        message=cut_message(alert.message),
        state=state,
        updated_at=at,
        key=key[:MAX_SCALAR_CHARS] if isinstance(key, str) else None,
        audit_record_id=record_id[:MAX_SCALAR_CHARS] if isinstance(record_id, str) else None,
        **changes,
    )


def note(alert_log: AlertLog | None, write: str, entry: AlertEntry) -> None:
    """Write to the alert log without ever failing the alert itself: the log is for reading, the outbox is what
    delivers, so a log that cannot be written is a warning (type and subject only)."""
    if alert_log is None:
        return
    try:
        getattr(alert_log, write)(entry)
    except Exception as exc:  # whatever the store raised, the alert goes (or went) out regardless
        log.warning(
            "alert log: %s %s not recorded as %s (%s)",
            entry.type,
            entry.subject,
            entry.state.value,
            getattr(exc, "code", type(exc).__name__),
        )


class OutboxAlerts:
    """The Alerts port for handlers: publishing means enqueuing for the `deliver_alerts` function. With an alert log,
    the alert is logged `pending` before it is queued (so a delivery can never be overtaken by its own pending row),
    and `failed` when it could not be queued."""

    def __init__(self, queue: WorkQueue, alert_log: AlertLog | None = None, clock: Clock | None = None) -> None:
        self._queue = queue
        self._log = alert_log
        self._clock = clock

    def publish(self, alert: Alert) -> None:
        if self._log is None or self._clock is None:
            self._queue.send(alert_to_message(alert))
            return
        now = self._clock.now()
        entry = log_entry(alert, new_alert_id(now), AlertState.PENDING, now)
        note(self._log, "add", entry)
        try:
            self._queue.send(alert_to_message(alert, entry.alert_id))
        except Exception as exc:
            error = getattr(exc, "code", type(exc).__name__)
            note(self._log, "put", replace(entry, state=AlertState.FAILED, error=f"not queued: {error}"))
            raise


def publish_or_record(alerts: Alerts, alert: Alert, *, audit: AuditTrail, clock: Clock) -> bool:
    """Publish; an alert that cannot be published is logged (its type and subject, never its data) and audited, and
    the act it reports stands. False when it was not published."""
    try:
        alerts.publish(alert)
        return True
    except Exception as exc:  # whatever the outbox raised, the act it reports is done and must not be undone
        error = getattr(exc, "code", type(exc).__name__)
        log.error("alert %s %s not queued: %s", alert.type, alert.subject, error)
        key = alert.data.get("key") if isinstance(alert.data.get("key"), str) else ""
        detail = {"type": alert.type, "subject": alert.subject, "severity": alert.severity.value, "error": error}
        detail["audit_record_id"] = alert.data.get("audit_record_id")
        try:
            audit.append(
                AuditRecord(uuid.uuid4().hex, clock.now(), "alert", "alert-outbox", key, "failed", detail=detail)
            )
        except Exception as audit_error:  # both stores down: the log line above is what is left
            log.error("alert %s %s: failure not audited (%s)", alert.type, alert.subject, type(audit_error).__name__)
        return False
