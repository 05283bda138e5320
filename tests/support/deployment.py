"""The reference deployment seeded into the session's emulators under fresh key names, with the app's real adapters
pointed at it: what integration tests of the handlers (compliance, rotation) run against."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from functions.compliance import report_keys
from shared import roles
from shared.clock import SystemClock
from shared.inventory import parse_inventory
from shared.roles.catalog import RoleCatalog

ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    """The reference deployment, its keys renamed so that tests sharing the session's emulators never collide."""

    def __init__(self, cloud, variables: dict[str, str] | None = None) -> None:
        from shared.azure.vaults import AzureVaults

        self.cloud = cloud
        emulators = cloud.emulators
        vault_id = emulators.vault_resource_id()
        _, sub, _, group, *_, vault_name = vault_id.strip("/").split("/")
        self.suffix = uuid.uuid4().hex[:8]
        self.aks_id, self.mysql_id, self.group_id = (str(uuid.uuid4()) for _ in range(3))
        document = yaml.safe_load((ROOT / "inventory/reference.yaml").read_text())
        self.document = document
        for key in document["keys"]:
            key["name"] = f"{key['name']}-{self.suffix}"
            for consumer in key["consumers"]:
                if consumer["kind"] == "dek-table":
                    consumer["options"]["partition_prefix"] = f"{key['name']}-"
        self.variables = {
            "CMK_VAULT_NAME": vault_name,
            "CMK_VAULT_URL": cloud.vault_url,
            "CMK_SUBSCRIPTION_ID": sub,
            "CMK_RESOURCE_GROUP": group,
            "AKS_IDENTITY_PRINCIPAL_ID": self.aks_id,
            "MYSQL_IDENTITY_PRINCIPAL_ID": self.mysql_id,
            "CMK_APP_PRINCIPAL_ID": cloud.app_principal,
            **(variables or {}),
        }
        self.inventory = parse_inventory(document, variables=self.variables)
        self.sub = sub
        self.vault = cloud.app_keyvault()
        self.access = cloud.app_access()
        self.vaults = AzureVaults(cloud.credential(), base_url=emulators.arm_url, connection_verify=emulators.ca_cert)
        clock = SystemClock()
        self.clock = clock
        self.roles = RoleCatalog(self.access, clock)
        for key in self.inventory.keys:
            self.vault.create_key(
                key.ref, kty=key.kty, size=key.size, ops=key.ops, expires=key.rotation.expiry_for(clock.now())
            )
            self.vault.set_rotation_policy(key.ref, key.rotation.to_policy())
            self.grant(key.scope, key.identity.principal_id, roles.CRYPTO_SERVICE_ENCRYPTION_USER.guid)

    def key(self, base: str):
        return self.inventory.key(f"{base}-{self.suffix}")

    def grant(self, scope: str, principal: str, guid: str, principal_type: str = "ServicePrincipal"):
        role_id = f"/subscriptions/{self.sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        return self.access.create_assignment(scope, role_id, principal, principal_type)

    def report(self):
        return report_keys(
            inventory=self.inventory,
            vault=self.vault,
            access=self.access,
            roles=RoleCatalog(self.access, self.clock),
            vault_settings=self.vaults,
            clock=self.clock,
        )

    def codes(self, base: str) -> set[str]:
        name = f"{base}-{self.suffix}"
        return {f.code for f in self.report().findings if f.key == name}

    def define_role(self, data_actions: list[str]) -> str:
        client = self.cloud.emulators.authorization_client(str(uuid.uuid4()))
        guid = str(uuid.uuid4())
        with client:
            client.role_definitions.create_or_update(
                f"/subscriptions/{self.sub}",
                guid,
                {
                    "properties": {
                        "roleName": f"cmk-test-{guid[:8]}",
                        "type": "CustomRole",
                        "description": "integration test",
                        "assignableScopes": [f"/subscriptions/{self.sub}"],
                        "permissions": [{"dataActions": data_actions}],
                    }
                },
            )
        return guid
