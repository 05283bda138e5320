"""A queue trigger's `connection`, resolved as the Functions host resolves it: a connection string wins; otherwise the
identity-based `<name>__queueServiceUri` or `<name>__accountName`, with `__credential`/`__clientId` (names
case-insensitive). What the devhost then polls with is exercised over Azurite with OAuth by
tests/e2e/test_deployed_shape_over_the_wire.py."""

from __future__ import annotations

import pytest

from devhost.queues import IdentityConnection, QueueConnectionError, connection_string

CLIENT = "0f9e3a52-5c2b-4f0a-9a71-1d2c3b4a5e6f"


def test_a_connection_string_wins():
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "stcmk"}
    assert connection_string("AzureWebJobsStorage", env) == "UseDevelopmentStorage=true"


def test_the_account_name_gives_the_public_cloud_queue_service_and_the_managed_identity():
    env = {
        "AzureWebJobsStorage__accountName": "stcmk",
        "AzureWebJobsStorage__CREDENTIAL": "managedidentity",
        "azurewebjobsstorage__clientid": CLIENT,
        "DEVHOST_CA_BUNDLE": "/tmp/ca.pem",
    }
    assert connection_string("AzureWebJobsStorage", env) == IdentityConnection(
        "https://stcmk.queue.core.windows.net", True, CLIENT, "/tmp/ca.pem"
    )


def test_the_queue_service_uri_is_honoured_over_the_account_name_and_must_be_https():
    env = {"AzureWebJobsStorage__accountName": "stcmk", "AzureWebJobsStorage__queueServiceUri": "https://q.example/"}
    found = connection_string("AzureWebJobsStorage", env)
    assert isinstance(found, IdentityConnection) and found.queue_service_uri == "https://q.example"
    assert not found.managed_identity
    with pytest.raises(QueueConnectionError, match="queueServiceUri"):
        connection_string("AzureWebJobsStorage", {"AzureWebJobsStorage__queueServiceUri": "http://q.example"})


def test_nothing_set_names_the_setting_and_both_forms():
    with pytest.raises(QueueConnectionError) as err:
        connection_string("AzureWebJobsStorage", {"AzureWebJobsStorage__tableServiceUri": "https://t.example"})
    assert "AzureWebJobsStorage__queueServiceUri" in str(err.value)
