"""`python -m shared.envelope.cli seed` as an operator runs it: a separate process configured only by app settings
(the inventory file, AzureWebJobsStorage on Azurite, the app's managed identity on the emulators), which must leave
the DEKs in the registry and print one JSON summary on stdout with the progress bar on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shared.inventory import load_inventory
from tests.support.azurite import start_azurite

ROOT = Path(__file__).resolve().parents[2]
COUNT = 50


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-envelope-cli"))
    try:
        yield running
    finally:
        running.stop()


def test_the_seed_command_fills_the_registry_the_app_reads(cloud_with_app_identity, azurite, tmp_path):
    from shared.azure.dekstore import TableDekStore
    from shared.azure.tables import LazyTable, table_client

    cloud = cloud_with_app_identity
    emulators = cloud.emulators
    _, sub, _, group, *_, vault_name = emulators.vault_resource_id().strip("/").split("/")
    suffix = uuid.uuid4().hex[:8]
    document = yaml.safe_load((ROOT / "inventory/reference.yaml").read_text())
    for key in document["keys"]:
        key["name"] = f"{key['name']}-{suffix}"
    inventory_file = tmp_path / "inventory.yaml"
    inventory_file.write_text(yaml.safe_dump(document))
    identity = emulators.register_identity(cloud.app_principal)
    settings = {
        "CMK_INVENTORY_PATH": str(inventory_file),
        "AzureWebJobsStorage": azurite.connection_string,
        "CMK_DEK_TABLE": f"deks{suffix}",
        "CMK_CREDENTIAL": "default",
        "IDENTITY_ENDPOINT": identity["identity_endpoint"],
        "IDENTITY_HEADER": identity["identity_header"],
        "CMK_CA_BUNDLE": emulators.ca_cert,
        "CMK_VERIFY_CHALLENGE_RESOURCE": "false",
        "CMK_ARM_ENDPOINT": emulators.arm_url,
        "CMK_SUBSCRIPTION_ID": sub,
        "CMK_RESOURCE_GROUP": group,
        "CMK_VAULT_NAME": vault_name,
        "CMK_VAULT_URL": cloud.vault_url,
        "CMK_APP_PRINCIPAL_ID": cloud.app_principal,
        "AKS_IDENTITY_PRINCIPAL_ID": str(uuid.uuid4()),
        "MYSQL_IDENTITY_PRINCIPAL_ID": str(uuid.uuid4()),
    }
    key = load_inventory(inventory_file, settings).key(f"mysql-encryption-key-{suffix}")
    vault = cloud.app_keyvault()
    vault.create_key(key.ref, kty=key.kty, size=key.size, ops=key.ops)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMK_", "AZURE_", "IDENTITY_", "MSI_"))}
    done = subprocess.run(
        [sys.executable, "-m", "shared.envelope.cli", "seed", "--key", key.name, "--count", str(COUNT)],
        cwd=ROOT,
        env=env | settings,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["created"], summary["failed"]) == (COUNT, 0)
    assert f"{COUNT}/{COUNT} 100%" in done.stderr
    store = TableDekStore(LazyTable(table_client(f"deks{suffix}", connection_string=azurite.connection_string)))
    assert store.count_by_key_id(key.ref) == {summary["key_id"]: COUNT}
