"""Queue triggers: poll a storage queue (Azurite locally) and run the function per message, with the Storage Queues
extension's rules from host.json `extensions.queues`:

- the queue is created if missing; messages are fetched `batchSize` at a time and run concurrently; the next batch
  is fetched when no more than `newBatchThreshold` are still running;
- an empty queue is polled with a growing interval (from 100 ms, doubling, up to `maxPollingInterval`);
- a message is held invisible while it runs (a 10-minute lease, not renewed; released when devhost stops mid-run);
  success deletes it; failure makes it
  visible again after `visibilityTimeout`; a failure at `dequeue_count >= maxDequeueCount` moves it to
  `<queue>-poison` (created if missing) and deletes the original;
- `messageEncoding: base64` (the default): the body is base64-decoded. A message that is not valid base64 is moved
  to the poison queue without running the function, as the extension does with a message it cannot decode;
- storage errors (say, Azurite not up yet) are logged and retried at the maximum polling interval.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devhost import trigger_inputs
from devhost.app_loader import FunctionSpec
from devhost.invocation import Invoker
from devhost.settings import QueueOptions

log = logging.getLogger("devhost")

MESSAGE_LEASE = dt.timedelta(minutes=10)
MIN_POLLING_INTERVAL = dt.timedelta(milliseconds=100)
POISON_SUFFIX = "-poison"
CA_BUNDLE_SETTING = "DEVHOST_CA_BUNDLE"


class QueueConnectionError(ValueError):
    """The binding's connection setting is missing or unusable; the message names the setting."""


@dataclass(frozen=True)
class IdentityConnection:
    """An identity-based connection (`<name>__queueServiceUri` or `<name>__accountName`, `__credential`, `__clientId`),
    as the host reads it: the queue service URI given, else `https://<account>.queue.core.windows.net`; the managed
    identity when `__credential` is `managedidentity` (user-assigned by `__clientId`), else DefaultAzureCredential.
    `ca_bundle` (DEVHOST_CA_BUNDLE) is what the local run's HTTPS Azurite needs trusted; Azure needs none."""

    queue_service_uri: str
    managed_identity: bool
    client_id: str | None
    ca_bundle: str | None = None

    def credential(self) -> Any:
        if self.managed_identity:
            from azure.identity.aio import ManagedIdentityCredential

            return ManagedIdentityCredential(client_id=self.client_id)
        from azure.identity.aio import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.client_id)


def connection_string(setting_name: str, environ: Mapping[str, str] | None = None) -> str | IdentityConnection:
    """The storage connection for a binding's `connection` (AzureWebJobs<name> is tried too, as in the host): a
    connection string, which wins, or else an identity-based connection from the `<name>__*` properties.

    "UseDevelopmentStorage=true" is passed through: azure-storage-queue maps it to Azurite's default ports.
    """
    source = os.environ if environ is None else environ
    for candidate in (setting_name, f"AzureWebJobs{setting_name}"):
        value = source.get(candidate, "").strip()
        if value:
            return value
    for candidate in (setting_name, f"AzureWebJobs{setting_name}"):
        properties = {
            name.lower()[len(candidate) + 2 :]: value.strip()
            for name, value in source.items()
            if name.lower().startswith(candidate.lower() + "__") and value.strip()
        }
        uri = properties.get("queueserviceuri")
        if not uri and properties.get("accountname"):
            uri = f"https://{properties['accountname']}.queue.core.windows.net"
        if uri:
            if not uri.lower().startswith("https://"):
                raise QueueConnectionError(f"{candidate}__queueServiceUri must be an https URL (got {uri!r})")
            return IdentityConnection(
                queue_service_uri=uri.rstrip("/"),
                managed_identity=properties.get("credential", "").lower() == "managedidentity",
                client_id=properties.get("clientid") or None,
                ca_bundle=source.get(CA_BUNDLE_SETTING, "").strip() or None,
            )
    raise QueueConnectionError(
        f"connection setting {setting_name!r} is not set (put a storage connection string in local.settings.json "
        "Values, e.g. 'UseDevelopmentStorage=true' for Azurite, or an identity-based connection: "
        f"{setting_name}__queueServiceUri or {setting_name}__accountName)"
    )


def decode_body(content: str | bytes, encoding: str) -> bytes | None:
    """The message body as the function sees it; None when base64 is expected and the content is not base64."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    if encoding != "base64":
        return raw
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


class QueuePoller:
    """Polls one queue for one function until cancelled."""

    def __init__(
        self, spec: FunctionSpec, invoker: Invoker, options: QueueOptions, connection: str | IdentityConnection
    ) -> None:
        if spec.queue_name is None:
            raise ValueError(f"function {spec.name!r}: queue trigger has no queueName")
        self.spec = spec
        self.queue_name = spec.queue_name
        self.poison_name = f"{spec.queue_name}{POISON_SUFFIX}"
        self._invoker = invoker
        self._options = options
        self._connection = connection
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        # imported here so that an app without queue triggers starts without loading the storage SDK
        from azure.core.exceptions import AzureError
        from azure.storage.queue.aio import QueueClient

        # the poll loop is the retry: one SDK retry keeps an unreachable account from stalling it for minutes
        credential = None
        if isinstance(self._connection, IdentityConnection):
            identity = self._connection
            credential = identity.credential()
            verify: Any = identity.ca_bundle or True
            queue, poison = (
                QueueClient(
                    identity.queue_service_uri, name, credential=credential, retry_total=1, connection_verify=verify
                )
                for name in (self.queue_name, self.poison_name)
            )
        else:
            queue = QueueClient.from_connection_string(self._connection, self.queue_name, retry_total=1)
            poison = QueueClient.from_connection_string(self._connection, self.poison_name, retry_total=1)
        interval = MIN_POLLING_INTERVAL
        created = False
        try:
            while True:
                try:
                    if not created:
                        await _create_if_missing(queue)
                        created = True
                    await self._wait_for_capacity()
                    room = self._options.batch_size
                    messages = [
                        message
                        async for message in queue.receive_messages(
                            messages_per_page=room,
                            max_messages=room,
                            visibility_timeout=int(MESSAGE_LEASE.total_seconds()),
                        )
                    ]
                except AzureError as error:
                    log.warning(
                        "Functions.%s: cannot read queue %r (%s); retrying in %s",
                        self.spec.name,
                        self.queue_name,
                        type(error).__name__,
                        self._options.max_polling_interval,
                    )
                    await asyncio.sleep(self._options.max_polling_interval.total_seconds())
                    continue
                for message in messages:
                    task = asyncio.create_task(self._process(queue, poison, message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                if messages:
                    interval = MIN_POLLING_INTERVAL
                    continue
                await asyncio.sleep(interval.total_seconds())
                interval = min(interval * 2, self._options.max_polling_interval)
        finally:
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            await queue.close()
            await poison.close()
            if credential is not None:
                await credential.close()

    async def _wait_for_capacity(self) -> None:
        threshold = self._options.effective_new_batch_threshold
        while len(self._in_flight) > threshold:
            await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)

    async def _process(self, queue: Any, poison: Any, message: Any) -> None:
        from azure.core.exceptions import AzureError

        try:
            body = decode_body(message.content, self._options.message_encoding)
            if body is None:
                why = "is not valid base64 (host.json messageEncoding is base64); the function was not run"
                await self._to_poison(queue, poison, message, why)
                return
            if message.dequeue_count > self._options.max_dequeue_count:
                # an earlier attempt never finished (the host died mid-run): the extension poisons these unrun
                why = f"was dequeued {message.dequeue_count} times, over maxDequeueCount; the function was not run"
                await self._to_poison(queue, poison, message, why)
                return
            outcome = await self._invoker.invoke(
                self.spec,
                reason=f"New queue message detected on '{self.queue_name}'.",
                build_input=lambda: trigger_inputs.queue_message(
                    body=body,
                    message_id=message.id,
                    dequeue_count=message.dequeue_count,
                    insertion_time=message.inserted_on,
                    expiration_time=message.expires_on,
                    next_visible_time=message.next_visible_on,
                    pop_receipt=message.pop_receipt,
                ),
            )
            if outcome.succeeded:
                await queue.delete_message(message.id, message.pop_receipt)
            elif message.dequeue_count >= self._options.max_dequeue_count:
                why = f"has reached MaxDequeueCount of {self._options.max_dequeue_count}"
                await self._to_poison(queue, poison, message, why)
            else:
                await queue.update_message(
                    message.id,
                    message.pop_receipt,
                    visibility_timeout=int(self._options.visibility_timeout.total_seconds()),
                )
        except asyncio.CancelledError:
            # shutting down mid-run: make the message visible again now rather than when the lease ends
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.update_message(message.id, message.pop_receipt, visibility_timeout=0), 2)
            raise
        except AzureError as error:
            # e.g. the lease expired and another reader took the message: it will come back, nothing is lost
            log.warning(
                "Functions.%s: could not settle message %s on %r: %s",
                self.spec.name,
                message.id,
                self.queue_name,
                type(error).__name__,
            )

    async def _to_poison(self, queue: Any, poison: Any, message: Any, why: str) -> None:
        log.warning(
            "Functions.%s: message %s on '%s' %s. Moving message to queue '%s'.",
            self.spec.name,
            message.id,
            self.queue_name,
            why,
            self.poison_name,
        )
        await _create_if_missing(poison)
        # the content goes over as it came (still encoded), so the poison message decodes like the original
        await poison.send_message(message.content)
        await queue.delete_message(message.id, message.pop_receipt)


async def _create_if_missing(client: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
