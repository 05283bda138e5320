"""Generic ARM resources as JSON documents, with the behaviour of the few resource types the app reconfigures.

Any `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}` can be PUT, read, PATCHed (JSON merge
patch, RFC 7386) and deleted. Three types get Azure's own rules, because the app's consumers depend on them:

* `Microsoft.DBforMySQL/flexibleServers`: `properties.dataEncryption` must name a *versioned* key
  (`primaryKeyURI`) and a user-assigned identity when `type` is `AzureKeyVault`; MySQL does not follow new versions.
* `Microsoft.Compute/diskEncryptionSets`: `properties.activeKey.keyUrl` (versioned unless
  `rotationToLatestKeyVersionEnabled`); when the key URL changes the old active key is appended to the read-only
  `previousKeys` and `lastKeyRotationTimestamp` is set from the emulated clock. Azure drops previous keys once every
  disk has moved; the emulated disks (emulators.disks) move after a lag, unless held back.
* `Microsoft.KeyVault/vaults`: `enableRbacAuthorization` and `accessPolicies` are validated; the caller (arm.py)
  raises `VaultAccessPolicyChanged` when either changes.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from emulators.arm_ids import ResourceId, is_guid, parse_resource_id, same_id

MYSQL_SERVERS = "microsoft.dbformysql/flexibleservers"
DISK_ENCRYPTION_SETS = "microsoft.compute/diskencryptionsets"
KEY_VAULTS = "microsoft.keyvault/vaults"
VAULT_ACCESS_POLICIES = "microsoft.keyvault/vaults/accesspolicies"

# Types whose PATCH is a long-running operation in Azure (answered 202 + Azure-AsyncOperation/Location).
LONG_RUNNING_PATCH = frozenset({MYSQL_SERVERS, DISK_ENCRYPTION_SETS})

# What makes a write of a long-running type a timed operation (emulators.operations): the consumer must re-wrap its
# data under another key, or reach its key as another identity.
_KEY_CONFIGURATION = {
    MYSQL_SERVERS: ("dataEncryption",),
    DISK_ENCRYPTION_SETS: ("activeKey", "rotationToLatestKeyVersionEnabled"),
}

_KEY_URL = re.compile(r"https://[^/\s?#]+(?::\d+)?/keys/(?P<name>[0-9A-Za-z-]{1,127})(?:/(?P<version>[^/\s?#]*))?/?")
_KEY_VERSION = re.compile(r"[0-9a-fA-F]{32}")
_ENCRYPTION_TYPES = (
    "EncryptionAtRestWithCustomerKey",
    "EncryptionAtRestWithPlatformAndCustomerKeys",
    "ConfidentialVmEncryptedWithCustomerKey",
)
_POLICY_CATEGORIES = ("keys", "secrets", "certificates", "storage")


class ArmError(Exception):
    """An ARM error response: {"error": {"code", "message"}} with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(field: str, problem: str, code: str = "InvalidParameter") -> ArmError:
    return ArmError(400, code, f"{field}: {problem}")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class KeyUrl:
    name: str
    version: str | None


def parse_key_url(value: object, field: str, *, versioned: bool) -> KeyUrl:
    """A Key Vault key URL; `versioned` demands the 32-hex-digit version segment Azure puts in versioned ids."""
    if not isinstance(value, str) or not value:
        raise bad_request(field, "required: a Key Vault key URL (https://{vault}/keys/{name}/{version})")
    match = _KEY_URL.fullmatch(value.strip())
    if not match:
        raise bad_request(field, f"not a Key Vault key URL ({value!r})")
    version = match.group("version") or None
    if version is not None and not _KEY_VERSION.fullmatch(version):
        raise bad_request(field, f"key version must be 32 hexadecimal characters ({value!r})")
    if versioned and version is None:
        raise bad_request(field, f"must be a versioned key URL, with the key version ({value!r})")
    return KeyUrl(match.group("name"), version)


def _user_assigned_identity_id(value: object, field: str) -> str:
    rid = parse_resource_id(value) if isinstance(value, str) else None
    if rid is None or rid.resource_type.lower() != "microsoft.managedidentity/userassignedidentities":
        raise bad_request(field, f"must be a user-assigned identity resource id ({value!r})")
    return str(value)


def _prepare_mysql(previous: dict | None, doc: dict, now: dt.datetime) -> None:
    encryption = doc["properties"].get("dataEncryption")
    if encryption is None:
        return
    field = "properties.dataEncryption"
    if not isinstance(encryption, dict):
        raise bad_request(field, "must be an object")
    kind = encryption.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("azurekeyvault", "systemmanaged"):
        raise bad_request(f"{field}.type", f"must be 'AzureKeyVault' or 'SystemManaged' ({kind!r})")
    if kind.lower() == "systemmanaged":
        return
    parse_key_url(encryption.get("primaryKeyURI"), f"{field}.primaryKeyURI", versioned=True)
    _user_assigned_identity_id(
        encryption.get("primaryUserAssignedIdentityId"), f"{field}.primaryUserAssignedIdentityId"
    )
    if encryption.get("geoBackupKeyURI"):
        parse_key_url(encryption["geoBackupKeyURI"], f"{field}.geoBackupKeyURI", versioned=True)
        _user_assigned_identity_id(
            encryption.get("geoBackupUserAssignedIdentityId"), f"{field}.geoBackupUserAssignedIdentityId"
        )
    # A flexible server reaches its key only through a user-assigned identity it carries (never its system-assigned
    # one): each identity dataEncryption names must be one of identity.userAssignedIdentities.
    assigned = (doc.get("identity") or {}).get("userAssignedIdentities")
    assigned = assigned if isinstance(assigned, dict) else {}
    for name in ("primaryUserAssignedIdentityId", "geoBackupUserAssignedIdentityId"):
        named = encryption.get(name)
        if named and not any(same_id(str(named), known) for known in assigned):
            raise bad_request(
                f"{field}.{name}",
                "the user-assigned identity must also be listed in identity.userAssignedIdentities "
                f"(a flexible server's customer-managed key takes a user-assigned identity only) ({named!r})",
            )


def _prepare_disk_encryption_set(previous: dict | None, doc: dict, now: dt.datetime) -> None:
    props = doc["properties"]
    for read_only in ("previousKeys", "lastKeyRotationTimestamp", "autoKeyRotationError"):
        props.pop(read_only, None)
    auto_rotate = props.get("rotationToLatestKeyVersionEnabled", False)
    if not isinstance(auto_rotate, bool):
        raise bad_request("properties.rotationToLatestKeyVersionEnabled", f"must be true or false ({auto_rotate!r})")
    active = props.get("activeKey")
    if not isinstance(active, dict):
        raise bad_request("properties.activeKey", "required: {keyUrl, sourceVault: {id}}")
    parse_key_url(active.get("keyUrl"), "properties.activeKey.keyUrl", versioned=not auto_rotate)
    source_vault = active.get("sourceVault")
    if source_vault is not None:
        vault = parse_resource_id((source_vault or {}).get("id", "")) if isinstance(source_vault, dict) else None
        if vault is None or vault.resource_type.lower() != KEY_VAULTS:
            raise bad_request(
                "properties.activeKey.sourceVault.id", f"must be a key vault resource id ({source_vault!r})"
            )
    encryption_type = props.setdefault("encryptionType", _ENCRYPTION_TYPES[0])
    if encryption_type not in _ENCRYPTION_TYPES:
        raise bad_request("properties.encryptionType", f"must be one of {', '.join(_ENCRYPTION_TYPES)}")

    before = (previous or {}).get("properties", {})
    previous_keys = copy.deepcopy(before.get("previousKeys", []))
    rotated_at = before.get("lastKeyRotationTimestamp")
    old_active = before.get("activeKey")
    if isinstance(old_active, dict) and old_active.get("keyUrl", "").lower() != active["keyUrl"].lower():
        previous_keys.append(copy.deepcopy(old_active))
        rotated_at = now.isoformat().replace("+00:00", "Z")
    props["previousKeys"] = previous_keys
    if rotated_at:
        props["lastKeyRotationTimestamp"] = rotated_at


def _validate_access_policies(policies: object, field: str) -> None:
    if not isinstance(policies, list):
        raise bad_request(field, "must be a list of access policies")
    for index, policy in enumerate(policies):
        where = f"{field}[{index}]"
        if not isinstance(policy, dict):
            raise bad_request(where, "must be an object {tenantId, objectId, permissions}")
        for id_field in ("tenantId", "objectId"):
            if not is_guid(policy.get(id_field)):
                raise bad_request(f"{where}.{id_field}", f"must be a GUID ({policy.get(id_field)!r})")
        permissions = policy.get("permissions")
        if not isinstance(permissions, dict):
            raise bad_request(f"{where}.permissions", "required: {keys, secrets, certificates, storage}")
        for category, values in permissions.items():
            if category not in _POLICY_CATEGORIES or not isinstance(values, list):
                raise bad_request(f"{where}.permissions.{category}", "must be a list of permission names")


def _prepare_vault(previous: dict | None, doc: dict, now: dt.datetime) -> None:
    props = doc["properties"]
    before = (previous or {}).get("properties", {})
    if "vaultUri" in before:
        props["vaultUri"] = before["vaultUri"]  # read-only
    rbac = props.setdefault("enableRbacAuthorization", before.get("enableRbacAuthorization", True))
    if not isinstance(rbac, bool):
        raise bad_request("properties.enableRbacAuthorization", f"must be true or false ({rbac!r})")
    # Soft-delete settings Key Vault answers from (recoveryLevel, recoverableDays, purge refusal) are fixed the way
    # Azure fixes them: retention only at creation, and purge protection can never be turned off again.
    if before.get("enablePurgeProtection") is True and props.get("enablePurgeProtection") is not True:
        raise bad_request("properties.enablePurgeProtection", "purge protection cannot be disabled once enabled")
    retention = props.get("softDeleteRetentionInDays", 90)
    if not isinstance(retention, int) or isinstance(retention, bool) or not 7 <= retention <= 90:
        raise bad_request("properties.softDeleteRetentionInDays", f"must be 7 to 90 days ({retention!r})")
    if previous is not None and before.get("softDeleteRetentionInDays", 90) != retention:
        raise bad_request("properties.softDeleteRetentionInDays", "can be set only when the vault is created")
    _validate_access_policies(props.setdefault("accessPolicies", []), "properties.accessPolicies")


_PREPARERS = {
    MYSQL_SERVERS: _prepare_mysql,
    DISK_ENCRYPTION_SETS: _prepare_disk_encryption_set,
    KEY_VAULTS: _prepare_vault,
}


def key_configuration_changed(rid: ResourceId, previous: dict, document: dict) -> bool:
    """Whether a write changes how the consumer reaches its key (properties above, or its identities)."""
    fields = _KEY_CONFIGURATION.get(rid.resource_type.lower(), ())
    before, after = previous.get("properties", {}), document.get("properties", {})

    def settable(value: object) -> object:  # the service's own status fields are not the caller's change
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if not k.endswith("EncryptionKeyStatus")}
        return value

    return previous.get("identity") != document.get("identity") or any(
        settable(before.get(f)) != settable(after.get(f)) for f in fields
    )


def build_put(rid: ResourceId, previous: dict | None, body: object, now: dt.datetime) -> dict:
    """The stored document after a PUT (create or replace)."""
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    location = body.get("location") or (previous or {}).get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(400, "LocationRequired", "location: required for a new resource")
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise bad_request("properties", "must be a JSON object")
    doc: dict[str, Any] = {
        "id": str(rid),
        "name": rid.name,
        "type": rid.resource_type,
        "location": location,
        "tags": body.get("tags") or {},
        "properties": copy.deepcopy(properties),
    }
    for optional in ("identity", "sku", "kind", "zones"):
        if optional in body:
            doc[optional] = copy.deepcopy(body[optional])
    return _finish(rid, previous, doc, now)


def build_patch(rid: ResourceId, previous: dict, body: object, now: dt.datetime) -> dict:
    """The stored document after a PATCH: a JSON merge patch of the whole document; id, name and type stay."""
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    patch = {k: v for k, v in body.items() if k not in ("id", "name", "type")}
    doc = merge_patch(copy.deepcopy(previous), patch)
    if not isinstance(doc.get("properties"), dict):
        doc["properties"] = {}
    return _finish(rid, previous, doc, now)


def _finish(rid: ResourceId, previous: dict | None, doc: dict, now: dt.datetime) -> dict:
    doc["properties"].pop("provisioningState", None)
    prepare = _PREPARERS.get(rid.resource_type.lower())
    if prepare:
        prepare(previous, doc, now)
    doc["properties"]["provisioningState"] = "Succeeded"
    return doc


def apply_access_policy_update(vault: dict, kind: str, body: object) -> list[dict]:
    """`PUT .../vaults/{v}/accessPolicies/{add|replace|remove}`: the vault's new access policy list.

    add: merge the listed permissions into the object's entry (or add one); replace: the object's entry becomes
    exactly the one given; remove: take the listed permissions away (an entry left with none disappears).
    """
    if kind.lower() not in ("add", "replace", "remove"):
        raise bad_request("operationKind", f"must be add, replace or remove ({kind!r})")
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise bad_request("properties.accessPolicies", "required")
    changes = body["properties"].get("accessPolicies")
    _validate_access_policies(changes, "properties.accessPolicies")
    current = copy.deepcopy(vault["properties"].get("accessPolicies", []))
    for change in changes:  # type: ignore[union-attr]
        match = next((p for p in current if p["objectId"].lower() == change["objectId"].lower()), None)
        if kind.lower() == "replace" or (match is None and kind.lower() == "add"):
            if match is not None:
                current.remove(match)
            current.append(copy.deepcopy(change))
        elif kind.lower() == "add":
            for category, values in change["permissions"].items():
                existing = match["permissions"].setdefault(category, [])
                existing.extend(v for v in values if v.lower() not in {e.lower() for e in existing})
        elif match is not None:  # remove
            for category, values in change["permissions"].items():
                gone = {v.lower() for v in values}
                match["permissions"][category] = [
                    v for v in match["permissions"].get(category, []) if v.lower() not in gone
                ]
            if not any(match["permissions"].values()):
                current.remove(match)
    return current
