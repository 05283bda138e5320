"""The template and the app agree on settings: every setting the app reads (docs/settings.md, which a docs test
keeps equal to the code) is set by infra/app/function.bicep or left out here with the reason, and every setting
the template sets is read by the app or by the platform (the Functions host, the Python worker)."""

from __future__ import annotations

import json

from shared.settings import CREDENTIAL_KINDS
from tests.deploy.templates import INFRA, app_settings, body, parse, resources
from tests.docs.test_settings_doc import documented, settings_in_code

# Read by the app, deliberately not set by the template: the default is right in Azure, or the setting is for the
# local run, or the platform sets it.
LEFT_OUT = {
    "AzureWebJobsStorage": "identity only: a connection string needs the account's shared keys, which are disabled",
    "AzureWebJobsStorage__accountName": "the service URIs are set instead: honoured over it, and right in every cloud",
    "AzureWebJobsStorage__managedIdentityResourceId": "__clientId names the identity instead (never both)",
    "AzureWebJobsStorage__clientSecret": "refused by the app: identity-only storage keeps secrets out of app settings",
    "AzureWebJobsStorage__clientCertificate": "refused by the app, as __clientSecret",
    "CMK_OPERATOR_ROLE": "the default, CmkGuardian.Operator, is the app role the preprovision hook creates",
    "DEVHOST_CA_BUNDLE": "the local host only",
    "AzureWebJobsFeatureFlags": "current Functions hosts index the Python v2 model without it",
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig and refuses this setting",
    "IDENTITY_ENDPOINT": "set by App Service for the managed identity",
    "IDENTITY_HEADER": "set by App Service for the managed identity",
    "WEBSITE_INSTANCE_ID": "set by App Service",
    "WEBSITE_AUTH_ENABLED": "set by App Service when authsettingsV2 is enabled (asserted below)",
    "CMK_ARM_ENDPOINT": "the default, https://management.azure.com, is Azure's",
    "CMK_CA_BUNDLE": "the local emulators' certificate; Azure's endpoints need none",
    "CMK_VERIFY_CHALLENGE_RESOURCE": "the default (true) is the only value allowed outside the local run",
    "CMK_CLOCK_URL": "the local run's movable clock",
    "CMK_LOCAL_RUN": "refused in Azure",
    "CMK_ALERT_TOPIC_KEY": "the app publishes with its identity; the topic's local auth (keys) is disabled",
    "CMK_SWEEP_SCHEDULE": "the default, hourly, is what the docs assume",
    "CMK_RBAC_PROPAGATION_SECONDS": "the default, 600 s, is Key Vault's documented propagation time",
    "CMK_FOLLOW_UP_SECONDS": "the default follows CMK_RBAC_PROPAGATION_SECONDS",
    "CMK_CLAIMS_TABLE": "default table name",
    "CMK_AUDIT_TABLE": "default table name",
    "CMK_TELEMETRY_CONSOLE": "the local run's console exporter; in Azure the worker's own switch sends telemetry",
    "CMK_REVOCATIONS_TABLE": "default table name",
    "CMK_DEK_TABLE": "default table name",
    "CMK_BUDGET_TABLE": "default table name",
    "CMK_ALERTS_TABLE": "default table name",
    "CMK_SHARD_KEY_TABLE": "default table name",
    "CMK_SHARD_KEY_TTL_SECONDS": "default 300 s: the revocation bound docs/settings.md states",
    "CMK_VAULT_URL": "the reference inventory derives it from CMK_VAULT_NAME",
    "DEVHOST_FUNCTION_KEY": "the local host only",
    "DEVHOST_MASTER_KEY": "the local host only",
    "DEVHOST_EVENTGRID_KEY": "the local host only",
}

# Set by the template, read by the platform rather than (or as well as) the app's code.
READ_BY_PLATFORM = {
    "AzureWebJobsStorage__credential": "the Functions host: identity-based host storage",
    "AzureWebJobsStorage__clientId": "the Functions host: which user-assigned identity",
    "AzureWebJobsStorage__blobServiceUri": "the Functions host: locks, timers (blob leases)",
    "AzureWebJobsStorage__queueServiceUri": "the Functions host: queue triggers",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the Python worker's Azure Monitor exporter",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "the exporter: Entra ID ingestion (local auth is disabled)",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "the Python worker: configures Azure Monitor OpenTelemetry once",
}


def read_by_app() -> set[str]:
    return settings_in_code() | set(documented())


def test_every_setting_the_app_reads_is_set_or_left_out_with_a_reason():
    unset = read_by_app() - set(app_settings())
    assert unset == set(LEFT_OUT), (
        f"read but neither set in infra/app/function.bicep nor left out: {sorted(unset - set(LEFT_OUT))}; "
        f"left out but set, or no longer read: {sorted(set(LEFT_OUT) - unset)}"
    )
    assert all(reason.strip() for reason in LEFT_OUT.values())


def test_every_setting_the_template_sets_is_read_by_the_app_or_the_platform():
    stray = set(app_settings()) - read_by_app()
    assert stray <= set(READ_BY_PLATFORM), f"set but read by nobody: {sorted(stray - set(READ_BY_PLATFORM))}"


def test_storage_is_identity_only():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "AzureWebJobsStorage" not in settings
    account = body(resources(INFRA / "app" / "storage.bicep", "Microsoft.Storage/storageAccounts")["storage"])
    assert account["properties"]["allowSharedKeyAccess"] is False
    assert account["properties"]["allowBlobPublicAccess"] is False
    deployment = body(resources(INFRA / "app" / "function.bicep", "Microsoft.Web/sites")["app"])["properties"]
    assert deployment["functionAppConfig"]["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"


def test_telemetry_needs_the_apps_identity():
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    component = body(resources(INFRA / "app" / "monitoring.bicep", "Microsoft.Insights/components")["appInsights"])
    assert component["properties"]["DisableLocalAuth"] is True


def test_the_first_deployment_audits_and_trusts_only_signed_in_operators():
    settings = app_settings()
    assert settings["CMK_MODE"] == "cmkMode"
    assert parse(INFRA / "main.bicep")["parameters"]["cmkMode"]["default"] == "audit"
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]["cmkMode"]["value"]
    assert mapped == "${CMK_MODE=audit}"
    assert settings["CMK_CREDENTIAL"] in CREDENTIAL_KINDS and settings["CMK_CREDENTIAL"] != "default"
    assert settings["CMK_ALLOW_FUNCTION_KEY_ONLY"] == "false"
    auth = body(resources(INFRA / "app" / "function.bicep", "Microsoft.Web/sites/config")["auth"])
    assert auth["name"] == "authsettingsV2"
    assert auth["properties"]["platform"]["enabled"] is True  # App Service then sets WEBSITE_AUTH_ENABLED
    assert auth["properties"]["identityProviders"]["azureActiveDirectory"]["enabled"] is True
