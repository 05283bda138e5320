"""The Alerts port over azure-eventgrid: each alert becomes one CloudEvent 1.0 on the alert topic."""

from __future__ import annotations

from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.errors import NotFound
from shared.model import Alert

SOURCE = "/cmk-guardian"


class EventGridAlerts:
    def __init__(self, endpoint: str, *, key: str | None = None, credential: TokenCredential | None = None) -> None:
        if not key and credential is None:
            raise ValueError("EventGridAlerts needs the topic key or a credential")
        auth = AzureKeyCredential(key) if key else credential
        self._client = EventGridPublisherClient(endpoint, auth)

    def publish(self, alert: Alert) -> None:
        event = CloudEvent(
            source=SOURCE,
            type=alert.type,
            subject=alert.subject,
            data={"severity": alert.severity.value, "message": alert.message, **alert.data},
        )
        try:
            self._client.send(event)
        except SDK_ERRORS as exc:
            raise translate_error(exc, "alert topic", NotFound) from exc

    def close(self) -> None:
        self._client.close()
