"""Seeds the emulated cloud with the reference deployment, through the same wire APIs a real deployment uses.

Identities, consumer resources (ARM), role assignments (AuthorizationManagementClient), keys and rotation policies
(KeyClient) and the function's Event Grid subscriptions. Every step is idempotent, so seeding a cloud restored from
its state directory changes nothing that is already right.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared import roles
from shared.errors import KeyNotFound
from shared.inventory import Inventory, load_inventory

RESOURCE_API = {
    "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
    "Microsoft.DBforMySQL/flexibleServers": "2023-12-30",
    "Microsoft.Compute/diskEncryptionSets": "2024-03-02",
}
KEYVAULT_EVENT_TYPES = [
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.KeyExpired",
    "Microsoft.KeyVault.VaultAccessPolicyChanged",
]
HSM_INVENTORY = "inventory/reference-hsm.yaml"
ARM_EVENT_TYPES = ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess"]


@dataclass(frozen=True)
class Identities:
    """Principal ids of the local run's actors; kept in the state directory so a restart keeps them."""

    operator: str
    app: str
    aks: str
    mysql: str
    break_glass: str

    @classmethod
    def load_or_create(cls, path: Path) -> Identities:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, TypeError, ValueError):
            made = cls(*(str(uuid.uuid4()) for _ in range(5)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(asdict(made), indent=2))
            return made


@dataclass(frozen=True)
class Cloud:
    """What `python -m emulators` printed when ready, plus the local run's identities."""

    ready: dict[str, Any]
    identities: Identities
    resource_group: str
    # The app's registration with the emulators' managed-identity endpoint (identity_endpoint, identity_header).
    app_identity: dict[str, str] | None = None
    # The inventory the run seeds and the app reads (CMK_INVENTORY_PATH); the reference inventory when unset.
    inventory_path: Path | None = None

    @property
    def arm_url(self) -> str:
        return self.ready["arm_url"]

    @property
    def admin_url(self) -> str:
        return self.ready["admin_url"]

    @property
    def ca_cert(self) -> str:
        return self.ready["ca_cert"]

    @property
    def tenant_id(self) -> str:
        return self.ready["tenant_id"]

    @property
    def subscription_id(self) -> str:
        return self.ready["subscription_id"]

    @property
    def hsm(self) -> bool:
        """The reference deployment lives on an emulated Managed HSM (`scripts/run --hsm`), not a Key Vault."""
        return bool(self.ready.get("managed_hsms"))

    @property
    def _stores(self) -> dict[str, dict[str, str]]:
        return self.ready["managed_hsms"] if self.hsm else self.ready["vaults"]

    @property
    def vault_name(self) -> str:
        return next(iter(self._stores))

    @property
    def vault_url(self) -> str:
        return self._stores[self.vault_name]["url"]

    @property
    def vault_resource_id(self) -> str:
        return self._stores[self.vault_name]["resource_id"]

    def register_app_identity(self) -> dict[str, str]:
        """Give the app its managed identity in the emulated cloud (idempotent: a restart keeps the same secret)."""
        return self.admin("POST", "/identities", {"principal_id": self.identities.app})

    def app_settings(self) -> dict[str, str]:
        """The app settings that point the unchanged app at this cloud (and fill the inventory's placeholders).

        The app authenticates as in Azure: DefaultAzureCredential finds IDENTITY_ENDPOINT + IDENTITY_HEADER (App
        Service's managed-identity protocol), here served by the emulators for the app's principal."""
        ids = self.identities
        identity = self.app_identity or {}
        return {
            "CMK_CREDENTIAL": "default",
            "IDENTITY_ENDPOINT": identity.get("identity_endpoint", ""),
            "IDENTITY_HEADER": identity.get("identity_header", ""),
            "CMK_CA_BUNDLE": self.ca_cert,
            "CMK_VERIFY_CHALLENGE_RESOURCE": "false",
            "CMK_ARM_ENDPOINT": self.arm_url,
            "CMK_LOCAL_RUN": "true",  # principal headers as sent, function key alone: only against loopback emulators
            "CMK_CLOCK_URL": f"{self.admin_url}/clock",
            "CMK_SUBSCRIPTION_ID": self.subscription_id,
            "CMK_RESOURCE_GROUP": self.resource_group,
            "CMK_VAULT_NAME": self.vault_name,
            "CMK_VAULT_URL": self.vault_url,
            "CMK_APP_PRINCIPAL_ID": ids.app,
            "AKS_IDENTITY_PRINCIPAL_ID": ids.aks,
            "MYSQL_IDENTITY_PRINCIPAL_ID": ids.mysql,
            "CMK_BREAK_GLASS_PRINCIPAL_ID": ids.break_glass,
            "CMK_ALERT_TOPIC": self.ready["eventgrid_topic_url"],
            "CMK_ALERT_TOPIC_ENDPOINT": self.ready["eventgrid_topic_url"],
            "CMK_ALERT_TOPIC_KEY": self.ready["eventgrid_topic_key"],
            # The emulated Key Vault applies each role assignment change after up to 600 emulated seconds, as
            # Azure takes up to about 10 minutes: the app judges that time on the emulated clock, while its
            # follow-up messages wait 3 real seconds and re-queue themselves until the time has passed.
            "CMK_RBAC_PROPAGATION_SECONDS": "600",
            "CMK_FOLLOW_UP_SECONDS": "3",
            **({"CMK_INVENTORY_PATH": HSM_INVENTORY} if self.hsm else {}),
            **({"CMK_INVENTORY_PATH": str(self.inventory_path)} if self.inventory_path else {}),
            **({"CMK_HSM_ADMIN_PRINCIPAL_ID": ids.operator} if self.hsm else {}),
        }

    def inventory(self) -> Inventory:
        default = Path(__file__).resolve().parent.parent / (HSM_INVENTORY if self.hsm else "inventory/reference.yaml")
        path = self.inventory_path or default
        return load_inventory(path, self.app_settings())

    def credential(self, principal_id: str | None = None):
        from emulators.credential import EmulatorCredential

        return EmulatorCredential(principal_id or self.identities.operator, self.tenant_id)

    # -- raw HTTPS for what has no SDK here: the admin API and generic ARM resources -------------------------------
    def request(self, method: str, url: str, body: Any = None, *, token: bool = False) -> Any:
        context = ssl.create_default_context(cafile=self.ca_cert)
        headers = {"Content-Type": "application/json"}
        if token:
            bearer = self.credential().get_token("https://management.azure.com/.default").token
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=context, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{method} {url}: {exc.code} {detail}") from None
        return json.loads(raw) if raw else None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.request(method, f"{self.admin_url}{path}", body)

    def emulated_now(self) -> datetime:
        return datetime.fromisoformat(self.admin("GET", "/clock")["now"].replace("Z", "+00:00"))

    def put_resource(self, resource_id: str, body: dict[str, Any]) -> Any:
        rtype = "/".join(resource_id.split("/providers/", 1)[1].split("/")[:3:2])
        api = RESOURCE_API.get(rtype, "2023-01-01")
        return self.request("PUT", f"{self.arm_url}{resource_id}?api-version={api}", body, token=True)

    def get_resource(self, resource_id: str) -> Any:
        rtype = "/".join(resource_id.split("/providers/", 1)[1].split("/")[:3:2])
        api = RESOURCE_API.get(rtype, "2023-01-01")
        return self.request("GET", f"{self.arm_url}{resource_id}?api-version={api}", token=True)

    # -- SDK clients as the operator ---------------------------------------------------------------------------
    def keyvault(self, principal_id: str | None = None):
        """The app's own Key Vault adapter, acting as `principal_id` (the operator by default)."""
        from shared.azure.keyvault import AzureKeyVault

        return AzureKeyVault(
            self.credential(principal_id), connection_verify=self.ca_cert, verify_challenge_resource=False
        )

    def authorization_client(self):
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(
            self.credential(), self.subscription_id, base_url=self.arm_url, connection_verify=self.ca_cert
        )

    def access(self):
        """The app's own AccessControl adapter, acting as the operator (on a Managed HSM, routed to its local RBAC
        for scopes within it, as the app's is)."""
        from shared.azure.access import AzureAccessControl

        arm = AzureAccessControl(
            self.credential(), self.subscription_id, base_url=self.arm_url, connection_verify=self.ca_cert
        )
        if not self.hsm:
            return arm
        from shared.azure.hsm_access import ManagedHsmAccessControl
        from shared.local_rbac import RoutedAccessControl

        local = ManagedHsmAccessControl(
            self.vault_resource_id,
            self.vault_url,
            self.credential(),
            connection_verify=self.ca_cert,
            verify_challenge_resource=False,
        )
        return RoutedAccessControl(arm, {self.vault_resource_id: local})

    def assign(self, scope: str, role: roles.BuiltInRole, principal_id: str, principal_type: str = "ServicePrincipal"):
        """Create (or find) an assignment; returns its id."""
        access = self.access()
        try:
            role_id = roles.role_definition_id(self.subscription_id, role)
            return access.create_assignment(scope, role_id, principal_id, principal_type).id
        finally:
            access.close()

    def let_rbac_propagate(self) -> dict[str, Any]:
        """Wait for every pending role assignment change to reach Key Vault, the way a deployment in Azure waits:
        the emulated clock moves by the longest pending delay (the emulators' /admin/rbac/propagation/settle)."""
        return self.admin("POST", "/rbac/propagation/settle")

    def revoke(self, assignment_id: str) -> bool:
        access = self.access()
        try:
            return access.delete_assignment(assignment_id)
        finally:
            access.close()


def seed(cloud: Cloud) -> Inventory:
    """The reference deployment in the emulated cloud: identities, access, keys, policies, consumers."""
    inventory = cloud.inventory()
    ids = cloud.identities

    # Who may administer and who runs the app. The operator holds Key Vault Administrator only while seeding (standing
    # access would be drift the app reports); the app keeps Crypto Officer to rotate and re-wrap.
    # Role assignment changes take up to 10 (emulated) minutes to reach Key Vault: each step waits for its grants,
    # as a deployment in Azure must, before it relies on them.
    if cloud.hsm:
        from localrun.hsm import grant_hsm_roles

        operator_grant = grant_hsm_roles(cloud)
    else:
        operator_grant = cloud.assign(cloud.vault_resource_id, roles.ADMINISTRATOR, ids.operator, "User")
        cloud.assign(cloud.vault_resource_id, roles.CRYPTO_OFFICER, ids.app)
    cloud.let_rbac_propagate()

    aks_key = inventory.key("aks-encryption-key")
    mysql_key = inventory.key("mysql-encryption-key")
    # Each consumer's user-assigned identity, with a principal of its own (Azure never shares one between two
    # identities): the disk encryption set's for the AKS key, the flexible server's for the MySQL key.
    for identity, principal in ((aks_key.identity, ids.aks), (mysql_key.identity, ids.mysql)):
        cloud.put_resource(
            identity.resource_id,
            {"location": "westeurope", "properties": {"principalId": principal, "tenantId": cloud.tenant_id}},
        )

    versions = {}
    vault = cloud.keyvault()
    now = cloud.emulated_now()
    for key in inventory.keys:
        try:
            current = vault.get_key(key.ref)
        except KeyNotFound:
            current = (
                _import_first(cloud, key, now)
                if key.imported
                else vault.create_key(
                    key.ref,
                    kty=key.kty,
                    size=key.size,
                    ops=key.ops,
                    expires=key.rotation.expiry_for(now),
                    tags={"service": key.service, "managed-by": "cmk-guardian"},
                )
            )
        vault.set_rotation_policy(key.ref, key.rotation.to_policy())
        versions[key.name] = current.key_id
        cloud.assign(key.scope, key.role, key.identity.principal_id)
    vault.close()
    cloud.let_rbac_propagate()  # the consumers' identities can use their keys before the consumers start

    # A disk encryption set names a Key Vault as its key's sourceVault; on a Managed HSM the key URL alone says where.
    active_key: dict[str, Any] = {} if cloud.hsm else {"sourceVault": {"id": cloud.vault_resource_id}}
    for consumer in aks_key.consumers:
        if consumer.kind.value == "disk-encryption-set":
            cloud.put_resource(
                consumer.resource_id,
                {
                    "location": "westeurope",
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {aks_key.identity.resource_id: {}}},
                    "properties": {
                        "activeKey": {"keyUrl": versions[aks_key.name], **active_key},
                        "encryptionType": "EncryptionAtRestWithCustomerKey",
                        "rotationToLatestKeyVersionEnabled": False,
                    },
                },
            )
    for consumer in mysql_key.consumers:
        if consumer.kind.value == "mysql-flexible-server":
            # A flexible server takes its customer-managed key only through a user-assigned identity (Azure
            # facts: no system-assigned identity), the one the inventory names for the key.
            uami = mysql_key.identity.resource_id
            cloud.put_resource(
                consumer.resource_id,
                {
                    "location": "westeurope",
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami: {}}},
                    "properties": {
                        "dataEncryption": {
                            "type": "AzureKeyVault",
                            "primaryKeyURI": versions[mysql_key.name],
                            "primaryUserAssignedIdentityId": uami,
                        },
                    },
                },
            )
    cloud.revoke(operator_grant)
    cloud.let_rbac_propagate()  # the run starts with Key Vault agreeing with ARM
    return inventory


def _import_first(cloud: Cloud, key: Any, now: Any) -> Any:
    """An imported key's first version, from the local stand-in for the on-premises HSM, through KeyClient.import_key
    (tagged as the documented import step tags it), as its operator would bring it."""
    from localrun.onprem_hsm import import_into, key_client, onprem_key

    client = key_client(cloud)
    try:
        import_into(client, key.name, onprem_key(key.size), ops=list(key.ops), expires_on=key.rotation.expiry_for(now))
    finally:
        client.close()
    return cloud.keyvault().get_key(key.ref)


def subscribe_functions(cloud: Cloud, devhost_url: str, eventgrid_key: str) -> list[dict]:
    """Point Event Grid at the function's webhooks, as `az eventgrid system-topic event-subscription create` would."""
    hook = f"{devhost_url}/runtime/webhooks/eventgrid?code={eventgrid_key}&functionName="
    # A Managed HSM publishes no events: its keys are the sweep's alone (no subscription to make).
    keyvault = {
        "name": "cmk-keyvault-events",
        "endpoint": hook + "keyvault_events",
        "topic": cloud.vault_resource_id,
        "event_types": KEYVAULT_EVENT_TYPES,
    }
    specs = [
        *([] if cloud.hsm else [keyvault]),
        {
            "name": "cmk-role-assignment-events",
            "endpoint": hook + "role_assignment_events",
            "topic": f"/subscriptions/{cloud.subscription_id}",
            "event_types": ARM_EVENT_TYPES,
        },
    ]
    return [cloud.admin("POST", "/eventgrid/subscriptions", spec) for spec in specs]
