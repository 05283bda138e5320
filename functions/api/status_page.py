"""`GET /api/status`: what an operator sees at a glance, gathered here and drawn by functions.api.status_html.

Every key's view (functions.api.key_view: findings by severity, versions on a timeline, dependents per version, the
re-wrap in flight, the revocations in force), then the latest audit records and the latest alerts with their delivery
state. It only reads. A part that cannot be read says so in its place rather than failing the page: the page is most
needed when something is wrong.
"""

from __future__ import annotations

from typing import Any

from functions.api.key_status import keys_status
from functions.api.key_view import key_view
from functions.api.status_html import render_status
from shared.errors import CmkError
from shared.ports import AlertLog, AuditTrail

LATEST_AUDIT = 20
LATEST_ALERTS = 20


def status_view(
    *,
    inventory: Any,
    vault: Any,
    access: Any,
    roles: Any,
    vault_settings: Any,
    clock: Any,
    dekstore: Any,
    consumers: Any,
    audit: AuditTrail,
    revocations: Any = None,
    alert_log: AlertLog | None = None,
) -> dict[str, Any]:
    """The page's content as plain data (what the renderer draws, and what a test reads without HTML)."""
    now = clock.now()
    status = keys_status(
        inventory=inventory,
        vault=vault,
        access=access,
        roles=roles,
        vault_settings=vault_settings,
        clock=clock,
        dekstore=dekstore,
        consumers=consumers,
        audit=audit,
        revocations=revocations,
    )
    keys = []
    for key_json, managed in zip(status["keys"], inventory.keys, strict=True):
        keys.append(key_view(key_json, managed, inventory=inventory, vault=vault, now=now))
    return {
        "generated_at": status.get("generated_at"),
        "mode": status.get("mode"),
        "summary": status.get("summary", {}),
        "inventory": inventory.file_name,
        "keys": keys,
        "audit": _latest_audit(audit),
        "alerts": _latest_alerts(alert_log),
    }


def status_page(
    viewer: str = "",
    *,
    inventory: Any,
    vault: Any,
    access: Any,
    roles: Any,
    vault_settings: Any,
    clock: Any,
    dekstore: Any,
    consumers: Any,
    audit: AuditTrail,
    revocations: Any = None,
    alert_log: AlertLog | None = None,
) -> str:
    """The whole HTML page, one document with its style inline and no script."""
    view = status_view(
        inventory=inventory,
        vault=vault,
        access=access,
        roles=roles,
        vault_settings=vault_settings,
        clock=clock,
        dekstore=dekstore,
        consumers=consumers,
        audit=audit,
        revocations=revocations,
        alert_log=alert_log,
    )
    return render_status(view, viewer=viewer)


def _latest_audit(audit: AuditTrail) -> dict[str, Any]:
    try:
        return {"records": [r.to_json() for r in audit.page(page_size=LATEST_AUDIT).items]}
    except CmkError as exc:
        return {"error": f"{exc.code}: the audit trail could not be read"}


def _latest_alerts(alert_log: AlertLog | None) -> dict[str, Any]:
    if alert_log is None:
        return {"alerts": []}
    try:
        return {"alerts": [e.to_json() for e in alert_log.recent(limit=LATEST_ALERTS)]}
    except CmkError as exc:
        return {"error": f"{exc.code}: the alert log could not be read"}


def alerts_list(query: Any, *, alert_log: AlertLog) -> dict[str, Any]:
    """`GET /api/alerts`: the latest alerts, newest first, with their delivery state."""
    entries = alert_log.recent(limit=query.limit, state=query.state)
    return {"alerts": [e.to_json() for e in entries]}
