"""A re-wrap page the host gave up on (every attempt failed, `maxDequeueCount` times) lands in the poison queue: the
DEKs it names are still on their old version and still open, but nobody is moving them. An operator must know."""

from __future__ import annotations

from functions.rewrap.messages import parse_rewrap_message
from shared.errors import MalformedMessage
from shared.model import Alert, Severity
from shared.ports import Alerts

POISONED_ALERT = "CmkGuardian.Rewrap.PagePoisoned"


def alert_poisoned_page(message: object, *, alerts: Alerts) -> Alert:
    try:
        page = parse_rewrap_message(message)
        subject, data = (
            f"/keys/{page.key}/rewrap/{page.partition}",
            {
                "key": page.key,
                "partition": page.partition,
                "target": page.target,
                "dek_ids": len(page.dek_ids),
                "continuation": page.continuation is not None,
            },
        )
    except MalformedMessage as exc:
        subject, data = "/rewrap/poison", {"malformed": exc.field}
    alert = Alert(
        POISONED_ALERT,
        subject,
        Severity.HIGH,
        "a re-wrap page failed on every attempt and was poisoned: its DEKs stay on their old version (still usable) "
        "until the sweep resumes the re-wrap or an operator looks",
        data,
    )
    alerts.publish(alert)
    return alert
