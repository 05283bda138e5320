"""A re-wrap's progress as the status read shows it, from the trail's two records and the registry's counts.

The trail has one record when a re-wrap starts (with how many DEKs were behind) and one when it completes; pages
only log. So progress is counted, not summed from page records: processed = behind at the start - still behind now,
failed = DEKs a page refused (KCV mismatch; each refusal is on the record), running = started and not yet completed,
rate = processed per minute since the start (until the completion, once there is one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.rewrap.worker import REWRAP_ACTION
from shared.arm_ids import last_segment
from shared.model import same_key_id
from shared.ports import AuditTrail

RECENT_RECORDS = 200  # a key's re-wrap record is among its latest records: a handful per rotation


def rewrap_progress(
    managed: Any, current_id: str, counts: dict[str, int], *, audit: AuditTrail, now: datetime | None = None
) -> dict[str, Any]:
    version = last_segment(current_id)
    remaining = sum(n for k, n in counts.items() if not same_key_id(k, current_id))
    started = completed = None
    refused: set[str] = set()
    for record in audit.page(key=managed.name, page_size=RECENT_RECORDS).items:  # newest first
        if record.action != REWRAP_ACTION or (record.to_version or "").lower() != version.lower():
            continue
        if record.outcome == "completed" and completed is None:
            completed = record
        elif record.outcome == "started" and started is None:
            started = record
        elif record.outcome == "refused":
            refused.update(str(d) for d in record.detail.get("dek_ids", []))
    at_start = _int((started or completed).detail.get("deks")) if (started or completed) else None
    if completed is not None:
        processed = _int(completed.detail.get("deks")) or at_start or 0
    else:
        processed = max(0, (at_start or 0) - remaining) + len(refused)
    failed = len(refused)
    progress = {
        "target_version": version,
        "processed": processed,
        "succeeded": max(0, processed - failed),
        "failed": failed,
        "remaining": remaining,
        "running": started is not None and completed is None and remaining > len(refused),
    }
    end = completed.at if completed is not None else now
    if started is not None and end is not None and processed and (end - started.at).total_seconds() > 0:
        progress["rate_per_minute"] = round(processed * 60 / (end - started.at).total_seconds(), 1)
    return progress


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
