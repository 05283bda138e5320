"""The WorkQueue port over azure-storage-queue, base64-encoded as host.json's messageEncoding expects.

The queue is reached with AzureWebJobsStorage's connection string, or (identity-based storage) with its queue service
URI and a token credential, the same account either way that the Functions host's queue triggers poll."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.errors import InvalidInput, NotFound

MAX_DELAY_SECONDS = 7 * 24 * 3600


class StorageWorkQueue:
    def __init__(
        self,
        connection_string: str | None,
        queue_name: str,
        *,
        service_uri: str | None = None,
        credential: Any = None,
        connection_verify: str | bool = True,
    ) -> None:
        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        if connection_string:
            self._client = QueueClient.from_connection_string(connection_string, queue_name, **policies)
        elif service_uri and credential is not None:
            self._client = QueueClient(
                service_uri, queue_name, credential=credential, connection_verify=connection_verify, **policies
            )
        else:
            raise ValueError("a connection string, or a service URI and a credential, is required")
        self._created = False

    def send(self, message: dict, *, delay_seconds: int = 0) -> None:
        if not isinstance(message, dict):
            raise InvalidInput("message", "must be a JSON object")
        if delay_seconds < 0 or delay_seconds > MAX_DELAY_SECONDS:
            raise InvalidInput("delay_seconds", "must be between 0 and 7 days")
        try:
            if not self._created:
                with contextlib.suppress(ResourceExistsError):
                    self._client.create_queue()
                self._created = True
            self._client.send_message(json.dumps(message), visibility_timeout=delay_seconds or None)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"queue {self._client.queue_name}", NotFound) from exc

    def close(self) -> None:
        self._client.close()
