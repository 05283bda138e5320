"""AzureWebJobsStorage read as the Functions host reads it (shared.settings.HostStorage), and the queue and table
clients the container builds from it: a connection string wins; otherwise each service's URI from `__<service>
ServiceUri` or `__accountName`, with the identity `__credential`/`__clientId` name. Bad values fail naming the
setting; nothing here opens a connection."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.bootstrap import Container
from shared.errors import InvalidSetting
from shared.settings import HostStorage, Settings

CLIENT_ID = "0f9e3a52-5c2b-4f0a-9a71-1d2c3b4a5e6f"
CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def test_the_account_name_alone_gives_every_service_on_the_public_cloud():
    storage = HostStorage.from_env({"AzureWebJobsStorage__accountName": "stcmkguardian"})
    assert storage.identity_based
    assert storage.service_uri("queue", "queues") == "https://stcmkguardian.queue.core.windows.net"
    assert storage.service_uri("table", "tables") == "https://stcmkguardian.table.core.windows.net"


def test_a_service_uri_is_honoured_over_the_account_name():
    storage = HostStorage.from_env(
        {
            "AzureWebJobsStorage__accountName": "stcmkguardian",
            "AzureWebJobsStorage__queueServiceUri": "https://q.example.net/",
        }
    )
    assert storage.service_uri("queue", "queues") == "https://q.example.net"
    assert storage.service_uri("table", "tables") == "https://stcmkguardian.table.core.windows.net"


def test_property_names_are_case_insensitive_as_in_net_configuration():
    storage = HostStorage.from_env(
        {"AZUREWEBJOBSSTORAGE__ACCOUNTNAME": "stcmk", "azurewebjobsstorage__Credential": "ManagedIdentity"}
    )
    assert storage.account_name == "stcmk" and storage.credential == "managedidentity"


def test_a_connection_string_wins_over_every_identity_property():
    storage = HostStorage.from_env(
        {
            "AzureWebJobsStorage": CONNECTION,
            "AzureWebJobsStorage__accountName": "other",
            "AzureWebJobsStorage__credential": "managedidentity",
        }
    )
    assert storage.connection_string == CONNECTION and not storage.identity_based
    env = {"AzureWebJobsStorage": CONNECTION, "AzureWebJobsStorage__accountName": "x1y"}
    container = Container(Settings.from_env(env))
    assert container.queue("cmk-alerts")._client.url.startswith("http://127.0.0.1:9/devstoreaccount1")


def test_only_a_service_uri_is_not_enough_for_the_other_service():
    storage = HostStorage.from_env({"AzureWebJobsStorage__tableServiceUri": "https://t.example.net"})
    with pytest.raises(InvalidSetting) as err:
        storage.service_uri("queue", "queues (the alert outbox)")
    assert err.value.field == "AzureWebJobsStorage"
    assert "AzureWebJobsStorage__queueServiceUri" in str(err.value)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"AzureWebJobsStorage__accountName": "Not_An-Account"}, "AzureWebJobsStorage__accountName"),
        ({"AzureWebJobsStorage__queueServiceUri": "http://q.example.net"}, "AzureWebJobsStorage__queueServiceUri"),
        ({"AzureWebJobsStorage__tableServiceUri": "not a url"}, "AzureWebJobsStorage__tableServiceUri"),
        ({"AzureWebJobsStorage__credential": "workloadidentity"}, "AzureWebJobsStorage__credential"),
        ({"AzureWebJobsStorage__clientId": "my-identity"}, "AzureWebJobsStorage__clientId"),
        ({"AzureWebJobsStorage__clientSecret": "s3cret"}, "AzureWebJobsStorage__clientSecret"),
        (
            {
                "AzureWebJobsStorage__credential": "managedidentity",
                "AzureWebJobsStorage__clientId": CLIENT_ID,
                "AzureWebJobsStorage__managedIdentityResourceId": "/subscriptions/s/resourceGroups/r/x",
            },
            "AzureWebJobsStorage__managedIdentityResourceId",
        ),
    ],
)
def test_a_bad_value_fails_at_start_naming_its_setting(env, field):
    with pytest.raises(InvalidSetting) as err:
        Settings.from_env({"AzureWebJobsStorage__accountName": "stcmk", **env})
    assert err.value.field == field
    assert "s3cret" not in str(err.value)


def test_no_storage_at_all_names_azurewebjobsstorage_for_queues_and_tables():
    container = Container(Settings.from_env({}))
    for build in (lambda: container.queue("cmk-alerts"), lambda: container.claims, lambda: container.alerts):
        with pytest.raises(InvalidSetting) as err:
            build()
        assert err.value.field == "AzureWebJobsStorage"


def test_identity_based_queues_and_tables_use_the_managed_identity_the_settings_name():
    container = Container(
        Settings.from_env(
            {
                "AzureWebJobsStorage__accountName": "stcmk",
                "AzureWebJobsStorage__credential": "managedidentity",
                "AzureWebJobsStorage__clientId": CLIENT_ID,
            }
        )
    )
    queue = container.queue("cmk-rewrap")
    assert queue._client.url == "https://stcmk.queue.core.windows.net/cmk-rewrap"
    assert container.audit._table.client.url.startswith("https://stcmk.table.core.windows.net")
    assert isinstance(container.storage_credential, ManagedIdentityCredential)
    assert queue._client.credential is container.storage_credential
    assert "storage_credential" not in Container.ports()


def test_a_client_id_without_credential_is_default_azure_credential_and_neither_is_the_apps_own():
    with_client = Container(
        Settings.from_env({"AzureWebJobsStorage__accountName": "stcmk", "AzureWebJobsStorage__clientId": CLIENT_ID})
    )
    assert isinstance(with_client.storage_credential, DefaultAzureCredential)
    plain = Container(Settings.from_env({"AzureWebJobsStorage__accountName": "stcmk"}))
    assert plain.storage_credential is plain.credential


def test_a_managed_identity_by_resource_id_is_built_without_a_client_id():
    resource_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app"
    env = {
        "AzureWebJobsStorage__accountName": "stcmk",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__managedIdentityResourceId": resource_id,
    }
    container = Container(Settings.from_env(env))
    assert container.settings.storage.resource_id == resource_id
    assert isinstance(container.storage_credential, ManagedIdentityCredential)
    with pytest.raises(InvalidSetting) as err:
        Settings.from_env({k: v for k, v in env.items() if not k.endswith("credential")})
    assert err.value.field == "AzureWebJobsStorage__managedIdentityResourceId"
