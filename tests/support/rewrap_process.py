"""A re-wrap worker as its own process, for tests that kill it: it drains an Azure Storage queue with the app's real
adapters (Key Vault emulator, Azurite tables and queue) the way the Functions host runs `rewrap_worker`: a message
is deleted only after its page succeeded, so one in flight when the process dies comes back after its visibility
timeout.

    python -m tests.support.rewrap_process CONFIG.json

CONFIG: {"connection", "queue", "tables": {"deks", "claims", "audit", "budget"}, "vault": {"ca", "tenant",
"principal"}, "inventory": {"document", "variables"}, "idle_exit_seconds", "visibility_timeout"}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(config_path: str) -> int:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from emulators.credential import EmulatorCredential
    from functions.rewrap.worker import WholePageFailed, rewrap_page
    from shared.azure.audit import TableAuditTrail
    from shared.azure.budget import TableRewrapBudget
    from shared.azure.claims import TableClaims
    from shared.azure.dekstore import TableDekStore
    from shared.azure.keyvault import AzureKeyVault
    from shared.azure.queue import StorageWorkQueue
    from shared.azure.tables import LazyTable, table_client
    from shared.clock import SystemClock
    from shared.inventory import parse_inventory
    from tests.fakes.outbound import FakeAlerts

    config = json.loads(Path(config_path).read_text())
    connection = config["connection"]

    def table(name: str) -> LazyTable:
        return LazyTable(table_client(name, connection_string=connection))

    ports = {
        "inventory": parse_inventory(config["inventory"]["document"], variables=config["inventory"]["variables"]),
        "vault": AzureKeyVault(
            EmulatorCredential(config["vault"]["principal"], config["vault"]["tenant"]),
            connection_verify=config["vault"]["ca"],
            verify_challenge_resource=False,
        ),
        "dekstore": TableDekStore(table(config["tables"]["deks"])),
        "rewrap_queue": StorageWorkQueue(connection, config["queue"]),
        "budget": TableRewrapBudget(table(config["tables"]["budget"])),
        "claims": TableClaims(table(config["tables"]["claims"])),
        "audit": TableAuditTrail(table(config["tables"]["audit"])),
        "alerts": FakeAlerts(),
        "clock": SystemClock(),
        "sleep": time.sleep,
    }
    queue = QueueClient.from_connection_string(
        connection,
        config["queue"],
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    print("ready", flush=True)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < config.get("idle_exit_seconds", 5):
        messages = list(queue.receive_messages(max_messages=1, visibility_timeout=config.get("visibility_timeout", 2)))
        if not messages:
            time.sleep(0.1)
            continue
        idle_since = time.monotonic()
        for message in messages:
            try:
                rewrap_page(json.loads(message.content), **ports)
            except WholePageFailed:
                continue  # left on the queue: it comes back after its visibility timeout
            try:
                queue.delete_message(message)
            except HttpResponseError as exc:
                if exc.error_code not in ("PopReceiptMismatch", "MessageNotFound"):
                    raise
                # the page outlasted its visibility timeout and another worker holds the message: the page is
                # idempotent, so the redelivery does no harm (the Functions host logs this and carries on too)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
