"""The storage adapters' second backend: Azurite over HTTPS with OAuth, reached with no connection string, through a
token credential, as the app reaches storage with identity-based AzureWebJobsStorage (`__credential`, `__clientId`,
`__queueServiceUri`/`__tableServiceUri`). Each storage contract runs its assertions on the fake, on Azurite by
connection string and on Azurite by identity, so the identity path is exercised, not assumed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite, start_azurite

APP_PRINCIPAL = "5b8f2a9e-3c1d-4e6f-8a7b-9c0d1e2f3a4b"
STORAGE_MODES = ["fake", "azurite", "azurite-identity"]


@pytest.fixture(scope="session")
def azurite_oauth(tmp_path_factory) -> Iterator[Azurite]:
    running = start_azurite(tmp_path_factory.mktemp("azurite-oauth"), oauth=True)
    try:
        yield running
    finally:
        running.stop()


def identity_table(azurite: Azurite, name: str):
    """A LazyTable on the OAuth Azurite, authenticated by a bearer token for the app's principal."""
    from emulators.credential import EmulatorCredential
    from shared.azure.tables import LazyTable, table_client

    client = table_client(
        name,
        service_uri=azurite.table_endpoint,
        credential=EmulatorCredential(APP_PRINCIPAL),
        connection_verify=azurite.ca_cert,
    )
    return LazyTable(client)


def identity_queue(azurite: Azurite, name: str):
    """The app's StorageWorkQueue on the OAuth Azurite, authenticated by a bearer token for the app's principal."""
    from emulators.credential import EmulatorCredential
    from shared.azure.queue import StorageWorkQueue

    return StorageWorkQueue(
        None,
        name,
        service_uri=azurite.queue_endpoint,
        credential=EmulatorCredential(APP_PRINCIPAL),
        connection_verify=azurite.ca_cert,
    )
