"""ARM management clients, one per subscription, built on first use: an inventory may span subscriptions, and each
typed management client is bound to one. Every adapter that reads ARM resources shares this one cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from azure.core.credentials import TokenCredential

from shared.azure.retry import default_retry_policy

Client = TypeVar("Client")


class PerSubscription(Generic[Client]):
    def __init__(
        self,
        factory: Callable[..., Client],
        credential: TokenCredential,
        *,
        base_url: str = "https://management.azure.com",
        connection_verify: str | bool = True,
    ) -> None:
        self._factory = factory
        self._credential = credential
        self._base_url = base_url
        self._verify = connection_verify
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def __call__(self, subscription_id: str) -> Client:
        with self._lock:
            client = self._clients.get(subscription_id.lower())
            if client is None:
                client = self._factory(
                    self._credential,
                    subscription_id,
                    base_url=self._base_url,
                    connection_verify=self._verify,
                    retry_policy=default_retry_policy(),
                )
                self._clients[subscription_id.lower()] = client
            return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()  # type: ignore[attr-defined]
