"""The alert log: every alert the app sent or tried to send, with its delivery state, for `GET /api/alerts` and the
status page. The outbox (shared.alerts) writes `pending` when it queues an alert; `deliver_alerts` writes `sent` or
`failed` (the host retries a failure, so `failed` may later become `sent`; `sent` is never taken back)."""

from shared.alertlog.entries import (
    ALERT_ID,
    AlertEntry,
    AlertState,
    alert_id_at,
    check_alert_id,
    cut_message,
    new_alert_id,
)

__all__ = ["ALERT_ID", "AlertEntry", "AlertState", "alert_id_at", "check_alert_id", "cut_message", "new_alert_id"]
