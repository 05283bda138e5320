"""One Event Grid delivery attempt to a webhook (the request Event Grid sends, in either schema, and its outcome), and
the records a delivery and a dead-lettered event leave behind.

Split from emulators.eventgrid, which decides from these outcomes whether to retry, on what schedule, or to
dead-letter.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from emulators.eventgrid_schema import CLOUDEVENT_SCHEMA, Event
from emulators.eventgrid_subscriptions import Subscription

NOT_RETRIED = frozenset({400, 401, 403, 413})
TIMEOUT_ERROR = "DeliveryTimeout"


async def post_event(
    session: aiohttp.ClientSession | None,
    subscription: Subscription,
    event: Event,
    attempt: int,
    *,
    delivery_timeout: float,
) -> tuple[int | None, str | None]:
    """(status, error); the error of a delivery that was not answered in time starts with `TIMEOUT_ERROR`."""
    envelope = event.envelope(subscription.schema)
    headers = {
        "aeg-event-type": "Notification",
        "aeg-subscription-name": subscription.name.upper(),
        "aeg-delivery-count": str(attempt - 1),
        "aeg-output-event-id": event.id,
    }
    if subscription.schema == CLOUDEVENT_SCHEMA:
        body = json.dumps(envelope)
        headers |= {"Content-Type": "application/cloudevents+json; charset=utf-8", "aeg-metadata-version": "1.0"}
    else:
        body = json.dumps([envelope])
        headers |= {
            "Content-Type": "application/json; charset=utf-8",
            "aeg-metadata-version": "1",
            "aeg-data-version": event.data_version,
        }
    if session is None:
        return None, "emulator stopping"
    timeout = aiohttp.ClientTimeout(total=delivery_timeout)
    try:
        async with session.post(
            subscription.endpoint, data=body.encode(), headers=headers, timeout=timeout
        ) as response:
            await response.read()
            return response.status, None
    except TimeoutError:  # aiohttp's timeouts are TimeoutError too
        return None, f"{TIMEOUT_ERROR}: no answer within {delivery_timeout:g} s"
    except aiohttp.ClientError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def delivery_record(
    subscription: Subscription, event: Event, attempt: int, status: int | None, error: str | None, *, now: str
) -> dict[str, Any]:
    """What `GET /admin/eventgrid/deliveries` shows of one attempt."""
    return {
        "subscription": subscription.name,
        "eventId": event.id,
        "eventType": event.event_type,
        "attempt": attempt,
        "statusCode": status,
        "error": error,
        "timed_out": bool(error and error.startswith(TIMEOUT_ERROR)),
        "time": now,
    }


def dead_letter_record(
    subscription: Subscription,
    event: Event,
    attempts: int,
    status: int | None,
    error: str | None,
    reason: str,
    *,
    now: str,
) -> dict[str, Any]:
    """A dead-lettered event as Event Grid writes it: its envelope, why, and the last outcome."""
    return {
        **event.envelope(subscription.schema),
        "subscription": subscription.name,
        "deadLetterReason": reason,
        "deliveryAttempts": attempts,
        "lastDeliveryOutcome": str(status) if status is not None else (error or "unknown"),
        "lastHttpStatusCode": status,
        "deadLetterTime": now,
    }
