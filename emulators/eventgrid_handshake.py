"""Event Grid's validation handshake with a webhook endpoint, before a subscription is created: the
SubscriptionValidationEvent whose code the endpoint must echo (Event Grid schema), or the OPTIONS request whose
WebHook-Allowed-Origin it must answer (CloudEvents schema).

Split from emulators.eventgrid, which runs it from `create_subscription`.
"""

from __future__ import annotations

import json
import uuid

import aiohttp

from emulators.core import MovableClock
from emulators.eventgrid_schema import CLOUDEVENT_SCHEMA, utc_text
from emulators.eventgrid_subscriptions import Subscription, SubscriptionError

VALIDATION_ORIGIN = "eventgrid.azure.net"


async def validate_endpoint(subscription: Subscription, *, topic_id: str, clock: MovableClock) -> None:
    """Event Grid's validation handshake with a new subscription's endpoint; SubscriptionError says why it failed."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            if subscription.schema == CLOUDEVENT_SCHEMA:
                await _cloudevents_handshake(session, subscription)
            else:
                await _eventgrid_handshake(session, subscription, topic_id=topic_id, clock=clock)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SubscriptionError(
                f"endpoint: validation handshake with {subscription.endpoint} failed: {type(exc).__name__}: {exc}"
            ) from exc


async def _eventgrid_handshake(
    session: aiohttp.ClientSession, subscription: Subscription, *, topic_id: str, clock: MovableClock
) -> None:
    code = str(uuid.uuid4()).upper()
    event = {
        "id": str(uuid.uuid4()),
        "topic": subscription.topic or topic_id,
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": f"https://emulator.eventgrid.local/eventsubscriptions/{subscription.name}/"
            f"validate?id={code}",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": utc_text(clock.now()),
        "metadataVersion": "1",
        "dataVersion": "2",
    }
    headers = {
        "aeg-event-type": "SubscriptionValidation",
        "aeg-subscription-name": subscription.name.upper(),
        "aeg-delivery-count": "0",
        "aeg-metadata-version": "1",
        "aeg-data-version": "2",
    }
    async with session.post(subscription.endpoint, json=[event], headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            raise SubscriptionError(
                f"endpoint: validation handshake failed: {subscription.endpoint} answered {response.status} "
                'to the SubscriptionValidation event (expected 200 with {"validationResponse": code})'
            )
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    returned = answer.get("validationResponse") if isinstance(answer, dict) else None
    if returned != code:
        raise SubscriptionError(
            f"endpoint: validation handshake failed: {subscription.endpoint} did not echo the validation code "
            f'(expected body {{"validationResponse": "{code}"}}, got {text[:200]!r})'
        )


async def _cloudevents_handshake(session: aiohttp.ClientSession, subscription: Subscription) -> None:
    headers = {"WebHook-Request-Origin": VALIDATION_ORIGIN}
    async with session.options(subscription.endpoint, headers=headers) as response:
        allowed = response.headers.get("WebHook-Allowed-Origin", "")
        if response.status != 200 or allowed not in (VALIDATION_ORIGIN, "*"):
            raise SubscriptionError(
                f"endpoint: CloudEvents validation handshake failed: OPTIONS {subscription.endpoint} answered "
                f"{response.status} with WebHook-Allowed-Origin {allowed!r} (expected 200 and "
                f"{VALIDATION_ORIGIN!r} or '*')"
            )
