"""App settings (environment variables), read once and validated, so a typo fails loudly at the first call with the
setting's name instead of surfacing later as a confusing SDK error."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shared.errors import InvalidSetting
from shared.untrusted import describe_value

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INVENTORY_PATH_SETTING = "CMK_INVENTORY_PATH"
DEFAULT_INVENTORY_PATH = "inventory/reference.yaml"
CREDENTIAL_KINDS = ("default", "managed-identity")
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
STORAGE = "AzureWebJobsStorage"
STORAGE_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The identity-based AzureWebJobsStorage settings the app reads, spelled as the Functions docs spell them (the client
# secret and certificate only to refuse them). The host also reads __blobServiceUri, which the app never uses.
STORAGE_SETTINGS = (
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__managedIdentityResourceId",
    "AzureWebJobsStorage__clientSecret",
    "AzureWebJobsStorage__clientCertificate",
)
STORAGE_PROPERTIES = tuple(name.split("__", 1)[1] for name in STORAGE_SETTINGS)


@dataclass(frozen=True)
class HostStorage:
    """AzureWebJobsStorage read as the Functions host reads it, so the app's queues and tables live where the host's
    triggers poll (Microsoft.Azure.WebJobs' storage client providers and Microsoft.Extensions.Azure's credential
    factory):

    - a value in `AzureWebJobsStorage` itself is a connection string, and wins over every `__` property;
    - otherwise each service's URI is `__<service>ServiceUri` when given, else `https://<__accountName>.<service>.
      core.windows.net` (the public cloud; sovereign clouds set the URIs);
    - the identity: `__credential=managedidentity` is the managed identity, user-assigned by `__clientId` (or
      `__managedIdentityResourceId`, never both), system-assigned without; no `__credential` but a `__clientId`
      is DefaultAzureCredential preferring that managed identity; neither is the app's own credential.

    Property names are case-insensitive, as .NET configuration keys are. A client secret or certificate (which the
    host would accept) is refused: a secret in app settings is what identity-only storage exists to avoid.
    """

    connection_string: str | None = None
    account_name: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    credential: str | None = None  # "managedidentity" or None
    client_id: str | None = None
    resource_id: str | None = None

    @property
    def identity_based(self) -> bool:
        services = self.account_name or self.queue_service_uri or self.table_service_uri
        return not self.connection_string and bool(services)

    def service_uri(self, service: str, needed_for: str) -> str:
        """The `queue` or `table` service URI; InvalidSetting naming AzureWebJobsStorage when there is none."""
        explicit = self.queue_service_uri if service == "queue" else self.table_service_uri
        if explicit:
            return explicit
        if self.account_name:
            return f"https://{self.account_name}.{service}.core.windows.net"
        raise InvalidSetting(
            STORAGE,
            f"is required for {needed_for}: a connection string, or an identity-based connection "
            f"({STORAGE}__accountName, or {STORAGE}__{service}ServiceUri)",
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HostStorage:
        connection = (env.get(STORAGE) or "").strip() or None
        properties = _storage_properties(env)
        if connection:
            return cls(connection_string=connection)
        for secret in ("clientSecret", "clientCertificate"):
            if properties.get(secret):
                raise InvalidSetting(
                    f"{STORAGE}__{secret}",
                    "is not read by this app: use a managed identity (__credential=managedidentity) or a connection "
                    "string, not a secret in app settings",
                )
        account = properties.get("accountName")
        if account is not None and not STORAGE_ACCOUNT_NAME.fullmatch(account):
            raise InvalidSetting(
                f"{STORAGE}__accountName",
                f"must be a storage account name: 3-24 lower-case letters and digits (got "
                f"{describe_value(account, quote=True)})",
            )
        uris = {}
        for service in ("queue", "table"):
            uri = properties.get(f"{service}ServiceUri")
            if uri is not None:
                parts = urlsplit(uri)
                if parts.scheme.lower() != "https" or not parts.hostname:
                    raise InvalidSetting(
                        f"{STORAGE}__{service}ServiceUri",
                        "must be an https URL (a token is only ever sent over https), got "
                        f"{describe_value(uri, quote=True)}",
                    )
                uris[service] = uri.rstrip("/")
        credential = properties.get("credential")
        if credential is not None and credential.lower() != "managedidentity":
            raise InvalidSetting(
                f"{STORAGE}__credential",
                f"must be managedidentity, or unset for the app's own credential (got "
                f"{describe_value(credential, quote=True)})",
            )
        client_id = properties.get("clientId")
        if client_id is not None and not GUID.fullmatch(client_id):
            raise InvalidSetting(
                f"{STORAGE}__clientId",
                f"must be the managed identity's client id (a GUID), got {describe_value(client_id, quote=True)}",
            )
        resource_id = properties.get("managedIdentityResourceId")
        if resource_id is not None:
            if client_id is not None:
                raise InvalidSetting(
                    f"{STORAGE}__managedIdentityResourceId", f"cannot be set together with {STORAGE}__clientId"
                )
            if credential is None:
                raise InvalidSetting(
                    f"{STORAGE}__managedIdentityResourceId", f"is read only with {STORAGE}__credential=managedidentity"
                )
        return cls(
            account_name=account,
            queue_service_uri=uris.get("queue"),
            table_service_uri=uris.get("table"),
            credential="managedidentity" if credential is not None else None,
            client_id=client_id,
            resource_id=resource_id,
        )


def _storage_properties(env: Mapping[str, str]) -> dict[str, str]:
    """`AzureWebJobsStorage__<property>` (or `:`, as .NET also reads it) by canonical property name, case-insensitive,
    empty values left out."""
    canonical = {name.lower(): name for name in STORAGE_PROPERTIES}
    prefix = STORAGE.lower()
    found: dict[str, str] = {}
    for name, value in env.items():
        lowered = name.lower().replace(":", "__")
        if not lowered.startswith(prefix + "__") or not isinstance(value, str) or not value.strip():
            continue
        prop = canonical.get(lowered[len(prefix) + 2 :])
        if prop is not None:
            found[prop] = value.strip()
    return found


@dataclass(frozen=True)
class Settings:
    inventory_path: Path
    credential: str  # default | managed-identity
    managed_identity_client_id: str | None
    ca_bundle: str | None
    verify_challenge_resource: bool
    arm_endpoint: str
    subscription_id: str | None
    alert_topic_endpoint: str | None
    alert_topic_key: str | None
    sweep_schedule: str
    clock_url: str | None = None
    storage: HostStorage = HostStorage()  # AzureWebJobsStorage as the Functions host reads it (connection or identity)
    claims_table: str = "cmkclaims"
    audit_table: str = "cmkaudit"
    revocations_table: str = "cmkrevocations"
    dek_table: str = "cmkdeks"
    budget_table: str = "cmkbudget"
    alerts_table: str = "cmkalerts"
    shard_key_table: str = "cmkshardkeys"  # shard keys of `hierarchy: shard-keys` keys
    shard_key_ttl_seconds: int = 300  # how long an unwrapped shard key is kept in memory (a revocation's worst delay)
    rbac_propagation_seconds: int = 600  # how long Key Vault may take to apply an RBAC change (on the app's clock)
    # How long a follow-up check waits in its queue before it looks again (real seconds). In Azure the same as the
    # propagation time; the local run looks more often, because its clock can be moved ahead of real time.
    follow_up_seconds: int = 600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name, default)
            value = value.strip() if isinstance(value, str) else value
            return value or default

        inventory = inventory_path(env)
        credential = (get("CMK_CREDENTIAL", "default") or "default").lower()
        if credential not in CREDENTIAL_KINDS:
            raise InvalidSetting(
                "CMK_CREDENTIAL",
                f"must be one of {', '.join(CREDENTIAL_KINDS)} (got {describe_value(credential, quote=True)})",
            )
        verify = (get("CMK_VERIFY_CHALLENGE_RESOURCE", "true") or "true").lower()
        if verify not in ("true", "false"):
            raise InvalidSetting(
                "CMK_VERIFY_CHALLENGE_RESOURCE", f"must be true or false (got {describe_value(verify, quote=True)})"
            )
        arm = get("CMK_ARM_ENDPOINT", "https://management.azure.com") or ""
        if not arm.startswith("https://"):
            raise InvalidSetting("CMK_ARM_ENDPOINT", f"must be an https URL (got {describe_value(arm, quote=True)})")
        ca = get("CMK_CA_BUNDLE")
        if ca and not Path(ca).is_file():
            raise InvalidSetting("CMK_CA_BUNDLE", f"file not found ({ca})")
        propagation = seconds_setting(
            "CMK_RBAC_PROPAGATION_SECONDS", get("CMK_RBAC_PROPAGATION_SECONDS", "600"), 0, 7 * 24 * 3600
        )
        return cls(
            inventory_path=inventory,
            credential=credential,
            managed_identity_client_id=get("AZURE_CLIENT_ID"),
            ca_bundle=ca,
            verify_challenge_resource=verify == "true",
            arm_endpoint=arm.rstrip("/"),
            subscription_id=get("CMK_SUBSCRIPTION_ID"),
            alert_topic_endpoint=get("CMK_ALERT_TOPIC_ENDPOINT"),
            alert_topic_key=get("CMK_ALERT_TOPIC_KEY"),
            sweep_schedule=get("CMK_SWEEP_SCHEDULE", "0 0 * * * *") or "0 0 * * * *",
            clock_url=get("CMK_CLOCK_URL"),
            storage=HostStorage.from_env(env),
            claims_table=table_name("CMK_CLAIMS_TABLE", get("CMK_CLAIMS_TABLE", "cmkclaims")),
            audit_table=table_name("CMK_AUDIT_TABLE", get("CMK_AUDIT_TABLE", "cmkaudit")),
            revocations_table=table_name("CMK_REVOCATIONS_TABLE", get("CMK_REVOCATIONS_TABLE", "cmkrevocations")),
            dek_table=table_name("CMK_DEK_TABLE", get("CMK_DEK_TABLE", "cmkdeks")),
            budget_table=table_name("CMK_BUDGET_TABLE", get("CMK_BUDGET_TABLE", "cmkbudget")),
            alerts_table=table_name("CMK_ALERTS_TABLE", get("CMK_ALERTS_TABLE", "cmkalerts")),
            shard_key_table=table_name("CMK_SHARD_KEY_TABLE", get("CMK_SHARD_KEY_TABLE", "cmkshardkeys")),
            shard_key_ttl_seconds=seconds_setting(
                "CMK_SHARD_KEY_TTL_SECONDS", get("CMK_SHARD_KEY_TTL_SECONDS", "300"), 0, 3600
            ),
            rbac_propagation_seconds=propagation,
            follow_up_seconds=seconds_setting(
                "CMK_FOLLOW_UP_SECONDS", get("CMK_FOLLOW_UP_SECONDS", str(propagation)), 1, 7 * 24 * 3600
            ),
        )

    @property
    def connection_verify(self) -> str | bool:
        return self.ca_bundle or True


def seconds_setting(setting: str, value: str | None, low: int, high: int) -> int:
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        raise InvalidSetting(
            setting, f"must be a whole number of seconds from {low} to {high} (got {describe_value(value or '')})"
        )
    return int(value)


def table_name(setting: str, value: str | None) -> str:
    """Table Storage's rule, checked here so a bad name fails naming its setting, not as a 400 from the service."""
    if not value or not TABLE_NAME.fullmatch(value) or value.lower() == "tables":
        raise InvalidSetting(
            setting,
            "must be a table name: 3-63 letters and digits, starting with a letter "
            f"(got {describe_value(value or '', quote=True)})",
        )
    return value


def inventory_path(env: Mapping[str, str]) -> Path:
    """CMK_INVENTORY_PATH, relative to the project root unless absolute; the reference inventory when unset."""
    path = Path((env.get(INVENTORY_PATH_SETTING) or "").strip() or DEFAULT_INVENTORY_PATH)
    return path if path.is_absolute() else PROJECT_ROOT / path


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine. No Azure endpoint is loopback, so this is what tells the local run."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_local_for_insecure(
    settings: Settings, *, vault_urls: Iterable[str] = (), alert_endpoint: str | None = None
) -> None:
    """Refuse the two relaxations the local emulators need wherever they would weaken a real deployment.

    CMK_VERIFY_CHALLENGE_RESOURCE=false lets any host that answers a Key Vault challenge receive a token for it; the
    emulators need it (127.0.0.1 never matches vault.azure.net), a real vault never does. An http:// alert topic
    would send its access key in clear. Both are allowed only when every endpoint they concern is loopback.
    """
    if not settings.verify_challenge_resource:
        remote = sorted(url for url in vault_urls if not is_loopback(url))
        if remote:
            raise InvalidSetting(
                "CMK_VERIFY_CHALLENGE_RESOURCE",
                f"false is allowed only against the local emulators (loopback vaults); {remote[0]} is not local",
            )
    if alert_endpoint and urlsplit(alert_endpoint).scheme.lower() != "https" and not is_loopback(alert_endpoint):
        raise InvalidSetting(
            "CMK_ALERT_TOPIC_ENDPOINT",
            "must be an https URL outside the local run, or its key would travel in clear "
            f"(got {describe_value(alert_endpoint, quote=True)})",
        )
