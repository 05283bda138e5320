"""The inventory: the reference file, placeholders, validation (every problem, each naming key and field), lookups."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from shared.errors import CmkError
from shared.inventory import (
    DEFAULT_INVENTORY_PATH,
    IdentityKind,
    Inventory,
    InventoryError,
    Mode,
    UnknownKey,
    inventory_path,
    load_inventory,
    parse_inventory,
)
from shared.model import ConsumerKind, RotationActionType
from shared.roles.builtin import CRYPTO_SERVICE_ENCRYPTION_USER

PROJECT_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = PROJECT_ROOT / "inventory" / "reference.yaml"

SUB = "11111111-2222-4333-8444-555555555555"
OTHER_SUB = "99999999-2222-4333-8444-555555555555"
RG = "rg-test"
OTHER_RG = "rg-other"
AKS_ID = "aaaaaaaa-0000-4000-8000-000000000001"
MYSQL_ID = "bbbbbbbb-0000-4000-8000-000000000002"
OTHER_ID = "eeeeeeee-0000-4000-8000-000000000005"
APP_ID = "cccccccc-0000-4000-8000-000000000003"
BREAK_GLASS_ID = "dddddddd-0000-4000-8000-000000000004"
NEW_ID = "ffffffff-0000-4000-8000-000000000006"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/kv-test"
OTHER_VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/{OTHER_RG}/providers/Microsoft.KeyVault/vaults/kv-other"


def arm(provider_type_and_name: str, group: str = RG) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{provider_type_and_name}"


EXPIRING = {"rotate_after": "P90D", "expire_after": "P180D", "notify_before": "P30D"}


def key_doc(
    name: str,
    vault: str,
    principal_id: str,
    kind: str,
    identity_resource: str,
    consumers: list,
    rotation: dict = EXPIRING,
) -> dict:
    return {
        "name": name,
        "vault": vault,
        "kty": "RSA-HSM",
        "size": 2048,
        "ops": ["wrapKey", "unwrapKey"],
        "service": name.split("-")[0],
        "identity": {"principal_id": principal_id, "kind": kind, "resource_id": identity_resource},
        "role": "Key Vault Crypto Service Encryption User",
        "rotation": dict(rotation),
        "consumers": consumers,
    }


def valid_doc() -> dict:
    """Two vaults in two resource groups; kv-test (an emulator-style URL) holds the two reference-like keys."""
    return copy.deepcopy(
        {
            "mode": "audit",
            "app_identity": APP_ID,
            "alert_topic": "http://127.0.0.1:7001/api/events",
            "break_glass": [{"principal_id": BREAK_GLASS_ID, "principal_type": "Group", "reason": "on-call"}],
            "vaults": [
                {"name": "kv-test", "url": "https://127.0.0.1:8443/", "subscription_id": SUB, "resource_group": RG},
                {"name": "kv-other", "resource_id": OTHER_VAULT_ID},
            ],
            "keys": [
                key_doc(
                    "aks-key",
                    "kv-test",
                    AKS_ID,
                    "user-assigned",
                    arm("Microsoft.ManagedIdentity/userAssignedIdentities/id-aks"),
                    [
                        {"kind": "disk-encryption-set", "resource_id": arm("Microsoft.Compute/diskEncryptionSets/des")},
                        {"kind": "dek-table", "options": {"table": "deks", "partition_prefix": "aks-"}},
                    ],
                ),
                key_doc(
                    "mysql-key",
                    "kv-test",
                    MYSQL_ID,
                    "user-assigned",  # a flexible server's CMK takes only a user-assigned identity
                    arm("Microsoft.ManagedIdentity/userAssignedIdentities/id-mysql"),
                    [
                        {
                            "kind": "mysql-flexible-server",
                            "resource_id": arm("Microsoft.DBforMySQL/flexibleServers/mysql"),
                        },
                        {"kind": "dek-table", "options": {"table": "deks"}},  # prefix defaults to the key name
                    ],
                    rotation={"rotate_after": "P90D"},  # MySQL: no expiry, ever
                ),
                key_doc(
                    "other-key",
                    "kv-other",
                    OTHER_ID,
                    "user-assigned",
                    arm("Microsoft.ManagedIdentity/userAssignedIdentities/id-other", OTHER_RG),
                    [],
                ),
            ],
        }
    )


def problems_of(doc: object, **kwargs) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(doc, source="test.yaml", **kwargs)
    assert info.value.code == "InvalidInventory"
    assert isinstance(info.value, CmkError)
    return info.value.problems


def assert_reported(problems: list[str], path: str, fragment: str) -> None:
    at_path = [p for p in problems if p.startswith(f"test.yaml: {path}: ")]
    assert at_path, f"nothing reported at {path!r}; got {problems}"
    assert any(fragment in p for p in at_path), f"{fragment!r} not in {at_path}"


@pytest.fixture
def inventory() -> Inventory:
    return parse_inventory(valid_doc(), source="test.yaml")


# ----------------------------------------------------------------------------------------------------------------
# The reference file


def test_reference_file_loads_without_variables_and_is_the_reference_deployment():
    inv = load_inventory(REFERENCE)

    assert [v.name for v in inv.vaults] == ["kv-cmk-reference"]
    vault = inv.vaults[0]
    assert vault.url == "https://kv-cmk-reference.vault.azure.net"
    assert vault.resource_id.endswith("/providers/Microsoft.KeyVault/vaults/kv-cmk-reference")
    assert [k.name for k in inv.keys] == ["aks-encryption-key", "mysql-encryption-key"]
    for key in inv.keys:
        assert (key.kty, key.size, key.ops) == ("RSA-HSM", 2048, ("wrapKey", "unwrapKey"))
        assert key.role == CRYPTO_SERVICE_ENCRYPTION_USER
        assert key.vault == vault
        assert key.scope == f"{vault.resource_id}/keys/{key.name}"
        assert key.ref.versionless_id == f"https://kv-cmk-reference.vault.azure.net/keys/{key.name}"
        dek_tables = key.consumers_of(ConsumerKind.DEK_TABLE)
        assert len(dek_tables) == 1 and dek_tables[0].options["table"]

    aks, mysql = inv.key("aks-encryption-key"), inv.key("mysql-encryption-key")
    assert aks.identity.kind is IdentityKind.USER_ASSIGNED
    assert "/Microsoft.ManagedIdentity/userAssignedIdentities/" in aks.identity.resource_id
    assert mysql.identity.kind is IdentityKind.USER_ASSIGNED  # a flexible server's CMK identity is always a UAMI
    assert mysql.identity.resource_id.endswith("/Microsoft.ManagedIdentity/userAssignedIdentities/id-mysql-cmk")
    assert [c.kind for c in aks.consumers if c.kind is not ConsumerKind.DEK_TABLE] == [ConsumerKind.DISK_ENCRYPTION_SET]
    assert aks.consumers[0].resource_id.endswith("/providers/Microsoft.Compute/diskEncryptionSets/des-aks-cmk")
    assert mysql.consumers[0].kind is ConsumerKind.MYSQL_FLEXIBLE_SERVER
    assert mysql.consumers[0].resource_id.endswith("/providers/Microsoft.DBforMySQL/flexibleServers/mysql-dcc")

    # Least privilege: distinct identities, neither allowed on the other's key, the app identity on neither list.
    assert aks.identity.principal_id != mysql.identity.principal_id
    assert mysql.identity.principal_id not in inv.allowed_principals(aks)
    assert aks.identity.principal_id not in inv.allowed_principals(mysql)
    assert inv.app_identity not in inv.allowed_principals(aks) | inv.allowed_principals(mysql)
    assert inv.app_identity not in {aks.identity.principal_id, mysql.identity.principal_id}
    assert inv.policy.require_hsm and inv.policy.allowed_ops == ("wrapKey", "unwrapKey")


def test_reference_file_takes_emulator_values_from_variables():
    variables = {
        "CMK_SUBSCRIPTION_ID": SUB,
        "CMK_RESOURCE_GROUP": "rg-local",
        "CMK_VAULT_NAME": "kv-local",
        "CMK_VAULT_URL": "https://127.0.0.1:50123/",
        "AKS_IDENTITY_PRINCIPAL_ID": AKS_ID.upper(),
        "MYSQL_IDENTITY_PRINCIPAL_ID": MYSQL_ID,
        "CMK_APP_PRINCIPAL_ID": APP_ID,
        "CMK_ALERT_TOPIC": "http://127.0.0.1:50124/api/events",
        "CMK_MODE": "audit",
        "UNRELATED": "ignored",
    }
    inv = load_inventory(str(REFERENCE), variables)

    assert inv.mode is Mode.AUDIT and not inv.enforcing
    assert inv.app_identity == APP_ID
    assert inv.alert_topic == "http://127.0.0.1:50124/api/events"
    vault = inv.find_vault(vault_host="127.0.0.1:50123")
    assert vault is not None and vault.name == "kv-local" and vault.url == "https://127.0.0.1:50123"
    assert (
        vault.resource_id
        == f"/subscriptions/{SUB}/resourceGroups/rg-local/providers/Microsoft.KeyVault/vaults/kv-local"
    )
    aks = inv.find_key(key_name="aks-encryption-key", vault_host="127.0.0.1:50123")
    assert aks is not None and aks.identity.principal_id == AKS_ID  # GUIDs are normalised to lower case
    assert aks.ref.versionless_id == "https://127.0.0.1:50123/keys/aks-encryption-key"
    assert aks.scope.startswith(f"/subscriptions/{SUB}/resourceGroups/rg-local/")
    assert all(
        f"/subscriptions/{SUB}/resourceGroups/rg-local/" in c.resource_id for c in aks.consumers if c.resource_id
    )
    assert inv.key("mysql-encryption-key").identity.principal_id == MYSQL_ID


def test_reference_file_lists_every_placeholder_it_uses_in_its_header():
    text = REFERENCE.read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line.split(" #", 1)[0] for line in text.splitlines() if not line.startswith("#"))
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", body))
    assert {"CMK_SUBSCRIPTION_ID", "CMK_VAULT_URL", "AKS_IDENTITY_PRINCIPAL_ID", "CMK_APP_PRINCIPAL_ID"} <= used
    assert not [name for name in used if not re.search(rf"^#\s+{name}\s", header, re.MULTILINE)]


def test_inventory_path_setting():
    assert inventory_path({}) == PROJECT_ROOT / DEFAULT_INVENTORY_PATH == REFERENCE
    assert inventory_path({"CMK_INVENTORY_PATH": "other/x.yaml"}) == PROJECT_ROOT / "other" / "x.yaml"
    assert inventory_path({"CMK_INVENTORY_PATH": "/etc/cmk/inv.yaml"}) == Path("/etc/cmk/inv.yaml")


# ----------------------------------------------------------------------------------------------------------------
# Placeholders


def with_placeholders() -> dict:
    doc = valid_doc()
    doc["keys"][0]["identity"]["principal_id"] = "${AKS_ID}"
    doc["keys"][1]["identity"]["principal_id"] = f"${{MYSQL_ID:-{MYSQL_ID}}}"
    doc["vaults"][0]["url"] = "https://127.0.0.1:${VAULT_PORT:-8443}"
    doc["break_glass"][0]["reason"] = "${REASON:-paged} (cost $${HOME})"
    return doc


def test_placeholders_use_variables_then_defaults():
    inv = parse_inventory(with_placeholders(), variables={"AKS_ID": AKS_ID, "VAULT_PORT": "9001"})
    assert inv.key("aks-key").identity.principal_id == AKS_ID
    assert inv.key("mysql-key").identity.principal_id == MYSQL_ID  # the default
    assert inv.key("aks-key").vault.url == "https://127.0.0.1:9001"
    assert inv.break_glass[0].reason == "paged (cost ${HOME})"  # $${ is a literal ${

    overridden = parse_inventory(with_placeholders(), variables={"AKS_ID": AKS_ID, "MYSQL_ID": NEW_ID, "REASON": ""})
    assert overridden.key("mysql-key").identity.principal_id == NEW_ID
    assert overridden.break_glass[0].reason == "paged (cost ${HOME})"  # empty counts as unset


def test_placeholder_values_cannot_change_the_document_structure():
    doc = with_placeholders()
    reason = "x: y\n- z\nmode: enforce"
    inv = parse_inventory(doc, variables={"AKS_ID": AKS_ID, "REASON": reason})
    assert inv.break_glass[0].reason == f"{reason} (cost ${{HOME}})"
    assert inv.mode is Mode.AUDIT


def test_placeholder_without_value_or_default_is_named():
    problems = problems_of(with_placeholders(), variables={"VAULT_PORT": "9001"})
    assert_reported(problems, "keys[aks-key].identity.principal_id", "${AKS_ID} has no value and no default")


def test_malformed_and_unterminated_placeholders_are_reported():
    doc = valid_doc()
    doc["keys"][0]["service"] = "${1BAD}"
    doc["keys"][1]["service"] = "${OPEN"
    problems = problems_of(doc)
    assert_reported(problems, "keys[aks-key].service", "malformed placeholder")
    assert_reported(problems, "keys[mysql-key].service", "unterminated placeholder")


def test_placeholders_in_yaml_comments_are_ignored(tmp_path: Path):
    source = tmp_path / "inv.yaml"
    text = REFERENCE.read_text(encoding="utf-8").replace("mode: ", "# ${NEVER_SET}\nmode: ", 1)
    source.write_text(text, encoding="utf-8")
    assert load_inventory(source).keys


# ----------------------------------------------------------------------------------------------------------------
# Rejections


def set_path(doc: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node: object = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


def change(dotted: str, value: object) -> Callable[[dict], None]:
    return lambda doc: set_path(doc, dotted, value)


def delete(dotted: str) -> Callable[[dict], None]:
    parent, _, last = dotted.rpartition(".")

    def apply(doc: dict) -> None:
        node: object = doc
        for part in parent.split(".") if parent else ():
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        del node[last]  # type: ignore[attr-defined]

    return apply


UNIT_CASES = [
    (
        "bad-guid",
        change("keys.1.identity.principal_id", "abc"),
        "keys[mysql-key].identity.principal_id",
        "not a GUID ('abc')",
    ),
    (
        "duplicate-key-name",
        change("keys.1.name", "aks-key"),
        "keys[1].name",
        "duplicate key name 'aks-key' in vault 'kv-test'",
    ),
    (
        "identity-on-two-keys",
        change("keys.1.identity.principal_id", AKS_ID),
        "keys[mysql-key].identity.principal_id",
        "already uses key 'aks-key'",
    ),
    (
        "op-beyond-policy",
        change("keys.0.ops", ["wrapKey", "unwrapKey", "encrypt"]),
        "keys[aks-key].ops",
        "encrypt is not allowed by policy.allowed_ops",
    ),
    ("unknown-op", change("keys.0.ops", ["wrapkey", "rotate"]), "keys[aks-key].ops", "unknown key operation 'rotate'"),
    ("empty-ops", change("keys.0.ops", []), "keys[aks-key].ops", "at least one operation"),
    ("rsa-too-small", change("keys.0.size", 1024), "keys[aks-key].size", "RSA size 1024 is not allowed"),
    ("rsa-odd-size", change("keys.1.size", 2500), "keys[mysql-key].size", "RSA size 2500 is not allowed"),
    (
        "rsa-below-policy",
        lambda d: d.update(policy={"min_rsa_size": 3072}),
        "keys[aks-key].size",
        "expected one of 3072, 4096",
    ),
    ("kty-ec", change("keys.0.kty", "EC-HSM"), "keys[aks-key].kty", "unsupported key type 'EC-HSM'"),
    ("kty-software", change("keys.0.kty", "RSA"), "keys[aks-key].kty", "policy.require_hsm"),
    (
        "rotate-too-soon",
        change("keys.0.rotation.rotate_after", "P3D"),
        "keys[aks-key].rotation.rotate_after",
        "minimum of 7 days",
    ),
    (
        "rotate-too-near-expiry",
        change("keys.0.rotation.rotate_after", "P175D"),
        "keys[aks-key].rotation.rotate_after",
        "at least 7 days before expire_after (P180D)",
    ),
    (
        "retire-after-not-a-duration",
        change("keys.0.rotation.retire_after", "a month"),
        "keys[aks-key].rotation.retire_after",
        "not an ISO-8601 duration ('a month')",
    ),
    (
        "shards-not-a-number",
        change("keys.0.consumers.1.options", {"table": "deks", "partition_prefix": "aks-", "shards": "many"}),
        "keys[aks-key].consumers[1].options.shards",
        "must be an integer from 1 to 1000",
    ),
    (
        "hierarchy-unknown",
        change("keys.0.consumers.1.options", {"table": "deks", "partition_prefix": "aks-", "hierarchy": "tree"}),
        "keys[aks-key].consumers[1].options.hierarchy",
        "must be flat or shard-keys ('tree')",
    ),
    (
        "shard-key-rotation-not-a-duration",
        change(
            "keys.0.consumers.1.options",
            {"table": "deks", "partition_prefix": "aks-", "hierarchy": "shard-keys", "shard_key_rotate_after": "soon"},
        ),
        "keys[aks-key].consumers[1].options.shard_key_rotate_after",
        "'soon'",
    ),
    (
        "shard-key-rotation-on-a-flat-table",
        change(
            "keys.0.consumers.1.options",
            {"table": "deks", "partition_prefix": "aks-", "shard_key_rotate_after": "P90D"},
        ),
        "keys[aks-key].consumers[1].options.shard_key_rotate_after",
        "only a hierarchy: shard-keys table has shard keys",
    ),
    (
        "expiry-too-short",
        change("keys.0.rotation.expire_after", "P20D"),
        "keys[aks-key].rotation.expire_after",
        "minimum expiry of 28 days",
    ),
    (
        "mysql-key-with-expiry",
        change("keys.1.rotation.expire_after", "P180D"),
        "keys[mysql-key].rotation.expire_after",
        "not allowed on a key consumed by a MySQL flexible server: Microsoft requires its key to have no expiration",
    ),
    (
        "mysql-key-with-notify",
        change("keys.1.rotation.notify_before", "P30D"),
        "keys[mysql-key].rotation.notify_before",
        "goes Inaccessible when it expires",
    ),
    (
        "notify-too-short",
        change("keys.0.rotation.notify_before", "P5D"),
        "keys[aks-key].rotation.notify_before",
        "minimum of 7 days",
    ),
    (
        "notify-after-expiry",
        change("keys.0.rotation.notify_before", "P1Y"),
        "keys[aks-key].rotation.notify_before",
        "shorter than expire_after",
    ),
    (
        "not-iso-duration",
        change("keys.0.rotation.expire_after", "180 days"),
        "keys[aks-key].rotation.expire_after",
        "not an ISO-8601 duration ('180 days')",
    ),
    (
        "negative-duration",
        change("keys.0.rotation.rotate_after", "-P10D"),
        "keys[aks-key].rotation.rotate_after",
        "positive",
    ),
    (
        "unknown-consumer-kind",
        change("keys.0.consumers.0.kind", "cosmos"),
        "keys[aks-key].consumers[0].kind",
        "expected one of dek-table, mysql-flexible-server, disk-encryption-set",
    ),
    (
        "consumer-wrong-provider",
        change("keys.0.consumers.0.resource_id", arm("Microsoft.DBforMySQL/flexibleServers/m")),
        "keys[aks-key].consumers[0].resource_id",
        "expected a Microsoft.Compute/diskEncryptionSets resource id",
    ),
    (
        "consumer-missing-id",
        delete("keys.1.consumers.0.resource_id"),
        "keys[mysql-key].consumers[0].resource_id",
        "required field is missing",
    ),
    (
        "consumer-malformed-id",
        change("keys.1.consumers.0.resource_id", "mysql-dcc"),
        "keys[mysql-key].consumers[0].resource_id",
        "not an ARM resource id ('mysql-dcc')",
    ),
    (
        "consumer-bad-subscription",
        change(
            "keys.1.consumers.0.resource_id",
            "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.DBforMySQL/flexibleServers/m",
        ),
        "keys[mysql-key].consumers[0].resource_id",
        "subscription 'sub' is not a GUID",
    ),
    (
        "dek-table-option-typo",
        change("keys.0.consumers.1.options", {"table": "deks", "partiton_prefix": "x"}),
        "keys[aks-key].consumers[1].options.partiton_prefix",
        "did you mean 'partition_prefix'?",
    ),
    (
        "dek-table-without-table",
        change("keys.0.consumers.1.options", {}),
        "keys[aks-key].consumers[1].options.table",
        "required option is missing",
    ),
    (
        "shared-azure-consumer",
        lambda doc: (
            change(
                "keys.0.consumers.0",
                {"kind": "mysql-flexible-server", "resource_id": arm("Microsoft.DBforMySQL/flexibleServers/mysql")},
            )(doc),
            change("keys.0.rotation", {"rotate_after": "P90D"})(doc),  # a MySQL consumer forbids expiry
        ),
        "keys[mysql-key].consumers",
        "already a consumer of key 'aks-key'",
    ),
    (
        "overlapping-partition-prefix",
        change("keys.1.consumers.1.options", {"table": "DEKS", "partition_prefix": "aks"}),
        "keys[mysql-key].consumers",
        "partition prefix 'aks' overlaps 'aks-' of key 'aks-key'",
    ),
    (
        "uami-id-wrong-type",
        change("keys.0.identity.resource_id", arm("Microsoft.Compute/virtualMachines/vm")),
        "keys[aks-key].identity.resource_id",
        "expected a Microsoft.ManagedIdentity/userAssignedIdentities resource id",
    ),
    (
        "system-assigned-on-uami",
        lambda doc: [change("keys.2.identity.kind", "system-assigned")(doc)],
        "keys[other-key].identity.resource_id",
        "must not be a Microsoft.ManagedIdentity/userAssignedIdentities",
    ),
    (
        "mysql-key-system-assigned",
        lambda doc: [
            change("keys.1.identity.kind", "system-assigned")(doc),
            change("keys.1.identity.resource_id", arm("Microsoft.DBforMySQL/flexibleServers/mysql"))(doc),
        ],
        "keys[mysql-key].identity.kind",
        "a MySQL flexible server reaches its customer-managed key only through a user-assigned identity",
    ),
    (
        "identity-kind",
        change("keys.0.identity.kind", "managed"),
        "keys[aks-key].identity.kind",
        "expected one of user-assigned, system-assigned",
    ),
    (
        "identity-not-service-principal",
        change("keys.0.identity.principal_type", "User"),
        "keys[aks-key].identity.principal_type",
        "a managed identity is a ServicePrincipal",
    ),
    ("bad-vault-name", change("vaults.1.name", "kv--other"), "vaults[kv--other].name", "not a valid vault name"),
    ("vault-name-too-long", change("vaults.1.name", "k" * 25), f"vaults[{'k' * 25}].name", "3-24"),
    ("bad-key-name", change("keys.0.name", "aks.key"), "keys[aks.key].name", "not a valid key name ('aks.key')"),
    ("vault-url-http", change("vaults.0.url", "http://127.0.0.1:8443"), "vaults[kv-test].url", "must use https"),
    ("vault-url-path", change("vaults.0.url", "https://kv.vault.azure.net/keys"), "vaults[kv-test].url", "no path"),
    (
        "vault-id-wrong-name",
        change("vaults.1.resource_id", VAULT_ID),
        "vaults[kv-other].resource_id",
        "names vault 'kv-test', not 'kv-other'",
    ),
    (
        "vault-without-placement",
        delete("vaults.1.resource_id"),
        "vaults[kv-other].subscription_id",
        "required field is missing",
    ),
    (
        "same-vault-host",
        change("vaults.1.url", "https://127.0.0.1:8443"),
        "vaults[kv-other].url",
        "also used by vault 'kv-test'",
    ),
    (
        "alert-topic-http-remote",
        lambda d: d.update(alert_topic="http://topic.example.com/api/events"),
        "alert_topic",
        "must use https",
    ),
    ("unknown-vault", change("keys.0.vault", "kv-nope"), "keys[aks-key].vault", "unknown vault 'kv-nope'"),
    (
        "unknown-role",
        change("keys.0.role", "Key Vault Wizard"),
        "keys[aks-key].role",
        "unknown role 'Key Vault Wizard'",
    ),
    (
        "unknown-role-guid",
        change("keys.0.role", "00000000-0000-0000-0000-000000000000"),
        "keys[aks-key].role",
        "unknown role",
    ),
    (
        "role-cannot-unwrap",
        change("keys.0.role", "Key Vault Reader"),
        "keys[aks-key].role",
        "does not grant wrapKey, unwrapKey",
    ),
    (
        "role-manages-keys",
        change("keys.1.role", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"),
        "keys[mysql-key].role",
        "'Key Vault Crypto Officer' can also manage",
    ),
    ("bad-mode", lambda d: d.update(mode="yolo"), "mode", "expected one of enforce, audit, got 'yolo'"),
    ("bad-app-identity", lambda d: d.update(app_identity="app"), "app_identity", "not a GUID ('app')"),
    ("unknown-top-field", lambda d: d.update(vault=[]), "vault", "unknown field (did you mean 'vaults'?)"),
    ("unknown-key-field", change("keys.0.rotaton", {}), "keys[aks-key].rotaton", "did you mean 'rotation'?"),
    (
        "unknown-identity-field",
        change("keys.1.identity.client_id", AKS_ID),
        "keys[mysql-key].identity.client_id",
        "unknown field",
    ),
    ("wrong-type-size", change("keys.0.size", "2048"), "keys[aks-key].size", "expected an integer, got string"),
    ("wrong-type-bool-size", change("keys.0.size", True), "keys[aks-key].size", "expected an integer, got boolean"),
    ("wrong-type-ops", change("keys.0.ops", "wrapKey"), "keys[aks-key].ops", "expected a list, got string"),
    ("wrong-type-identity", change("keys.0.identity", AKS_ID), "keys[aks-key].identity", "expected a mapping"),
    ("wrong-type-policy", change("policy", {"require_hsm": "yes"}), "policy.require_hsm", "expected true or false"),
    (
        "identity-is-break-glass",
        change("keys.0.identity.principal_id", BREAK_GLASS_ID),
        "keys[aks-key].identity.principal_id",
        "also a break-glass principal",
    ),
    (
        "identity-is-app",
        change("keys.1.identity.principal_id", APP_ID.upper()),
        "keys[mysql-key].identity.principal_id",
        "the app's own identity",
    ),
    ("missing-service", delete("keys.0.service"), "keys[aks-key].service", "required field is missing"),
    ("missing-rotation", delete("keys.1.rotation"), "keys[mysql-key].rotation", "required field is missing"),
    ("missing-mode", delete("mode"), "mode", "required field is missing"),
    ("break-glass-without-reason", delete("break_glass.0.reason"), "break_glass[0].reason", "required field"),
    ("no-keys", lambda d: d.update(keys=[]), "keys", "at least one key"),
]


@pytest.mark.parametrize(("mutate", "path", "fragment"), [c[1:] for c in UNIT_CASES], ids=[c[0] for c in UNIT_CASES])
def test_invalid_inventory_is_rejected_naming_key_and_field(mutate, path, fragment):
    doc = valid_doc()
    mutate(doc)
    assert_reported(problems_of(doc), path, fragment)


def test_the_base_document_of_the_rejection_cases_is_valid(inventory: Inventory):
    assert [k.name for k in inventory.keys] == ["aks-key", "mysql-key", "other-key"]
    assert inventory.key("mysql-key").consumers_of(ConsumerKind.DEK_TABLE)[0].options == {
        "table": "deks",
        "partition_prefix": "mysql-key",
        "shards": 16,  # the default
    }


def test_rejection_lists_every_problem_not_just_the_first():
    doc = valid_doc()
    doc["keys"][0]["size"] = 1024
    doc["keys"][1]["identity"]["principal_id"] = "abc"
    doc["keys"][1]["rotation"]["rotate_after"] = "P1D"
    doc["vaults"][0]["url"] = "ftp://x"
    doc["mode"] = "loud"
    with pytest.raises(InventoryError) as info:
        parse_inventory(doc, source="test.yaml")
    problems = info.value.problems
    assert_reported(problems, "keys[aks-key].size", "1024")
    assert_reported(problems, "keys[mysql-key].identity.principal_id", "not a GUID")
    assert_reported(problems, "keys[mysql-key].rotation.rotate_after", "P1D")
    assert_reported(problems, "vaults[kv-test].url", "https")
    assert_reported(problems, "mode", "loud")
    assert len(problems) == 5, problems  # and nothing reported twice or as a knock-on effect
    assert all(p in str(info.value) for p in problems)
    assert str(info.value).startswith("invalid inventory (5 problems)")


def test_a_document_that_is_not_a_mapping_is_rejected():
    assert_reported_top = problems_of(["keys"])
    assert assert_reported_top == ["test.yaml: expected a mapping of inventory fields at the top level, got list"]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    source = tmp_path / "broken.yaml"
    source.write_text("mode: audit\nkeys:\n  - name: [unclosed\n    vault: x\n", encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(source)
    [problem] = info.value.problems
    assert problem.startswith("broken.yaml: line ")
    assert re.search(r"line [345],", problem)


def test_duplicate_yaml_fields_are_rejected_not_silently_merged(tmp_path: Path):
    source = tmp_path / "dup.yaml"
    source.write_text("mode: audit\napp_identity: x\nmode: enforce\n", encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(source)
    [problem] = info.value.problems
    assert problem.startswith("dup.yaml: line 3, column 1:") and "duplicate field 'mode'" in problem


def test_missing_file_is_an_inventory_error(tmp_path: Path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "absent.yaml")


# ----------------------------------------------------------------------------------------------------------------
# No server path in an error: problems and message name the file only; `path` keeps it for local tools


def _load_error(source: Path) -> InventoryError:
    with pytest.raises(InventoryError) as info:
        load_inventory(source)
    return info.value


def _assert_names_file_only(error: InventoryError, source: Path) -> None:
    directory = str(source.parent)
    assert error.problems, "an InventoryError always lists its problems"
    assert all(p.startswith(f"{source.name}: ") for p in error.problems), error.problems
    assert directory not in str(error) and not any(directory in p for p in error.problems)
    assert error.path == str(source)


def test_validation_problems_name_the_file_only(tmp_path: Path):
    source = tmp_path / "srv" / "inventory.yaml"
    source.parent.mkdir()
    doc = valid_doc()
    doc["keys"][1]["identity"]["principal_id"] = "abc"
    source.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    error = _load_error(source)
    _assert_names_file_only(error, source)
    assert "inventory.yaml: keys[mysql-key].identity.principal_id: not a GUID ('abc')" in error.problems


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read the inventory: No such file or directory"),
        (b"mode: audit\n\xff\xfe", "cannot read the inventory: not UTF-8"),
        (b"mode: [unclosed\n", "line 2"),
        (b"mode: audit\nmode: enforce\n", "duplicate field 'mode'"),
    ],
    ids=["missing", "not-utf8", "yaml-syntax", "yaml-duplicate"],
)
def test_reading_errors_name_the_file_only(tmp_path: Path, content: bytes | None, fragment: str):
    source = tmp_path / "secret-dir" / "inventory.yaml"
    source.parent.mkdir()
    if content is not None:
        source.write_bytes(content)
    error = _load_error(source)
    _assert_names_file_only(error, source)
    assert fragment in error.problems[0]


def test_an_unknown_key_names_the_file_only():
    inventory = parse_inventory(valid_doc(), source="/srv/app/inventory/x.yaml")
    with pytest.raises(UnknownKey) as info:
        inventory.key("nope")
    assert "(x.yaml)" in str(info.value) and "/srv/app" not in str(info.value)
    assert inventory.source == "/srv/app/inventory/x.yaml"  # kept whole for local tools


def test_an_inventory_error_over_http_carries_no_server_path(tmp_path: Path):
    """GET /api/keys with a broken inventory, in a fresh process (the app builds its dependencies once per process)."""
    source = tmp_path / "deploy" / "inventory.yaml"
    source.parent.mkdir()
    source.write_text("mode: audit\nkeys: []\n", encoding="utf-8")
    code = (
        "import azure.functions as func, function_app as f, sys; "
        "r = f.list_keys(func.HttpRequest('GET', '/api/keys', body=b'')); "
        "sys.stdout.write(str(r.status_code) + '\\n' + r.get_body().decode())"
    )
    env = {"CMK_INVENTORY_PATH": str(source), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    status, body = out.stdout.split("\n", 1)
    error = json.loads(body)["error"]
    assert (status, error["code"]) == ("500", "InvalidInventory")
    assert error["problems"] and all(p.startswith("inventory.yaml: ") for p in error["problems"])
    assert str(source.parent) not in body


# ----------------------------------------------------------------------------------------------------------------
# Lookups


def test_key_by_name(inventory: Inventory):
    assert inventory.key("AKS-KEY").name == "aks-key"
    assert inventory.key("kv-other/other-key").vault.name == "kv-other"
    with pytest.raises(UnknownKey) as info:
        inventory.key("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, CmkError)
    assert "nope" in str(info.value) and info.value.code == "UnknownKey"


def test_find_key_by_name_vault_and_host(inventory: Inventory):
    assert inventory.find_key(key_name="aks-key").name == "aks-key"
    assert inventory.find_key(key_name=" MySQL-Key ", vault_name="KV-TEST").name == "mysql-key"
    assert inventory.find_key(key_name="aks-key", vault_host="127.0.0.1:8443").name == "aks-key"
    assert inventory.find_key(key_name="aks-key", vault_host="https://127.0.0.1:8443/keys/aks-key/v1") is not None
    assert inventory.find_key(key_name="aks-key", vault_host="127.0.0.1:9443") is None  # another port, another vault
    assert inventory.find_key(key_name="aks-key", vault_host="127.0.0.1") is None
    assert inventory.find_key(key_name="aks-key", vault_name="kv-other") is None
    assert inventory.find_key(key_name="other-key", vault_host="KV-OTHER.vault.azure.net:443").name == "other-key"
    assert inventory.find_key(key_name="unknown") is None


def test_find_key_is_none_when_the_name_is_ambiguous_without_a_vault():
    doc = valid_doc()
    doc["keys"][2]["name"] = "aks-key"  # same name, other vault: allowed
    inv = parse_inventory(doc)
    assert inv.find_key(key_name="aks-key") is None
    assert inv.find_key(key_name="aks-key", vault_name="kv-other").identity.principal_id == OTHER_ID
    assert inv.key("kv-test/aks-key").identity.principal_id == AKS_ID
    with pytest.raises(UnknownKey, match="ambiguous"):
        inv.key("aks-key")


def test_find_vault(inventory: Inventory):
    assert inventory.find_vault(vault_name="KV-Test").name == "kv-test"
    assert inventory.find_vault(vault_host="127.0.0.1:8443").name == "kv-test"
    assert inventory.find_vault(vault_host="kv-other.VAULT.azure.net").name == "kv-other"
    assert inventory.find_vault(resource_id=OTHER_VAULT_ID.upper() + "/").name == "kv-other"
    assert inventory.find_vault(vault_name="kv-test", vault_host="kv-other.vault.azure.net") is None
    assert inventory.find_vault(vault_host="127.0.0.1:8444") is None
    assert inventory.find_vault() is None
    assert inventory.find_vault(vault_host="", vault_name=" ") is None  # blank criteria match nothing


SCOPE_CASES = [
    ("key", f"{VAULT_ID}/keys/aks-key", ["aks-key"]),
    ("key-case-insensitive", f"{VAULT_ID}/KEYS/AKS-KEY/".upper(), ["aks-key"]),
    ("key-name-prefix", f"{VAULT_ID}/keys/aks-ke", []),
    ("vault", VAULT_ID, ["aks-key", "mysql-key"]),
    ("vault-name-prefix", VAULT_ID[:-1], []),
    ("resource-group", f"/subscriptions/{SUB}/resourceGroups/{RG}", ["aks-key", "mysql-key"]),
    ("other-resource-group", f"/subscriptions/{SUB}/resourcegroups/{OTHER_RG}", ["other-key"]),
    ("subscription", f"/subscriptions/{SUB}", ["aks-key", "mysql-key", "other-key"]),
    ("root", "/", ["aks-key", "mysql-key", "other-key"]),
    ("management-group", "/providers/Microsoft.Management/managementGroups/mg", ["aks-key", "mysql-key", "other-key"]),
    ("unrelated-subscription", f"/subscriptions/{OTHER_SUB}", []),
    ("unrelated-resource", arm("Microsoft.Compute/diskEncryptionSets/des"), []),
]


@pytest.mark.parametrize(("scope", "expected"), [c[1:] for c in SCOPE_CASES], ids=[c[0] for c in SCOPE_CASES])
def test_keys_under_scope(inventory: Inventory, scope: str, expected: list[str]):
    assert [k.name for k in inventory.keys_under_scope(scope)] == expected


def test_allowed_principals_are_the_key_identity_and_break_glass(inventory: Inventory):
    assert inventory.allowed_principals(inventory.key("aks-key")) == {AKS_ID, BREAK_GLASS_ID}
    assert inventory.allowed_principals("mysql-key") == {MYSQL_ID, BREAK_GLASS_ID}
    assert inventory.app_identity == APP_ID


def test_rotation_keeps_text_and_timedelta_and_becomes_a_key_vault_policy(inventory: Inventory):
    rotation = inventory.key("aks-key").rotation
    assert (rotation.rotate_after.text, rotation.rotate_after.delta) == ("P90D", timedelta(days=90))
    policy = rotation.to_policy()
    assert policy.expires_in == "P180D"
    assert {(a.action, a.time_after_create, a.time_before_expiry) for a in policy.actions} == {
        (RotationActionType.ROTATE, "P90D", None),
        (RotationActionType.NOTIFY, None, "P30D"),
    }


def test_calendar_durations_are_accepted():
    doc = valid_doc()
    doc["keys"][0]["rotation"] = {"rotate_after": "P3M", "expire_after": "P1Y"}
    rotation = parse_inventory(doc).key("aks-key").rotation
    assert rotation.rotate_after.delta == timedelta(days=90) and rotation.expire_after.delta == timedelta(days=365)
    assert rotation.notify_before.text == "P30D"  # Key Vault's default near-expiry notice


def test_to_json_is_a_serialisable_summary(inventory: Inventory):
    summary = json.loads(json.dumps(parse_inventory(valid_doc(), source="/srv/app/inventory/x.yaml").to_json()))
    assert summary["mode"] == "audit"
    assert summary["source"] == "x.yaml"  # no server paths over HTTP
    assert [k["name"] for k in summary["keys"]] == ["aks-key", "mysql-key", "other-key"]
    aks = summary["keys"][0]
    assert aks["id"] == "https://127.0.0.1:8443/keys/aks-key"
    assert aks["role"] == {"id": CRYPTO_SERVICE_ENCRYPTION_USER.guid, "name": CRYPTO_SERVICE_ENCRYPTION_USER.name}
    assert aks["identity"]["principal_id"] == AKS_ID
    assert aks["consumers"][1] == {
        "kind": "dek-table",
        "resource_id": None,
        "options": {"table": "deks", "partition_prefix": "aks-", "shards": 16},
    }


def test_values_are_hashable_and_frozen(inventory: Inventory):
    key = inventory.key("aks-key")
    assert {key, inventory.key("aks-key")} == {key}
    with pytest.raises(AttributeError):
        key.name = "x"  # type: ignore[misc]


def test_retire_after_is_optional_and_read_as_a_duration():
    doc = valid_doc()
    doc["keys"][1]["rotation"]["retire_after"] = "P30D"
    inv = parse_inventory(doc, source="test.yaml", variables={})
    assert inv.key("mysql-key").rotation.retire_after.delta.days == 30
    assert inv.key("aks-key").rotation.retire_after is None  # unset: never retired automatically


def test_a_dek_table_may_choose_shard_keys_and_flat_reads_as_before():
    doc = valid_doc()
    doc["keys"][0]["consumers"][1]["options"]["hierarchy"] = "shard-keys"
    doc["keys"][1]["consumers"][1]["options"]["hierarchy"] = "flat"
    inventory = parse_inventory(doc, source="test.yaml")
    aks = inventory.key("aks-key").consumers_of(ConsumerKind.DEK_TABLE)[0].options
    assert aks["hierarchy"] == "shard-keys"
    assert "hierarchy" not in inventory.key("mysql-key").consumers_of(ConsumerKind.DEK_TABLE)[0].options
