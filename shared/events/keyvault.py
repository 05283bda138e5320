"""Key Vault's events (a key version created, near expiry or expired; a vault's access policies changed), read
from their `data` and resolved against the inventory.

The event names its key several ways at once (`data.Id`, `ObjectName`, `VaultName`, the topic); they must agree, and
the strongest one decides which managed key it is, so a weaker field can never make the app act on another vault's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.events.envelope import Common
from shared.events.fields import Fields, instant, malformed, reject, text
from shared.events.scope import ManagedScope
from shared.events.values import KeyEvent, RejectReason, VaultAccessPolicyChanged
from shared.untrusted import describe_value


@dataclass(frozen=True)
class _ObjectUrl:
    """A Key Vault object id such as https://kv.vault.azure.net/keys/name/version, split into its parts."""

    host: str
    segments: tuple[str, ...]


def _object_url(data: Fields) -> _ObjectUrl | None:
    raw = text(data, "Id")
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:
        malformed(f"data.Id: not a URL ({describe_value(raw)})")
    host = parts.netloc.rpartition("@")[2].lower()
    if parts.scheme.lower() not in ("https", "http") or not host:
        malformed(f"data.Id: expected an https URL of a Key Vault object, got {describe_value(raw)}")
    return _ObjectUrl(host=host, segments=tuple(s for s in parts.path.split("/") if s))


def key_event(cls: type[KeyEvent], common: Common, data: Fields, scope: ManagedScope) -> KeyEvent:
    object_type = text(data, "ObjectType")
    if object_type is not None and object_type.lower() != "key":
        malformed(f"data.ObjectType: expected 'Key' for {cls.event_type}, got {describe_value(object_type)}")

    url = _object_url(data)
    url_name = url_version = None
    if url is not None:
        if not url.segments or url.segments[0].lower() != "keys" or not 2 <= len(url.segments) <= 3:
            malformed(
                "data.Id: expected https://<vault>/keys/<name>/<version>, got a URL with path "
                + describe_value("/" + "/".join(url.segments))
            )
        url_name = url.segments[1]
        url_version = url.segments[2] if len(url.segments) == 3 else None

    object_name = text(data, "ObjectName")
    if url_name and object_name and url_name.lower() != object_name.lower():
        malformed(
            f"data.ObjectName: {describe_value(object_name)} disagrees with the key name in data.Id "
            f"({describe_value(url_name)})"
        )
    key_name = url_name or object_name or common.subject
    if not key_name:
        malformed("data.ObjectName: missing, and neither data.Id nor subject names the key")

    version = text(data, "Version")
    if url_version and version and url_version.lower() != version.lower():
        malformed(
            f"data.Version: {describe_value(version)} disagrees with the version in data.Id "
            f"({describe_value(url_version)})"
        )
    version = url_version or version
    if not version:
        malformed("data.Version: missing, and data.Id has no version segment")

    vault_name = text(data, "VaultName")
    nbf = instant(data.get("NBF"), "data.NBF")
    exp = instant(data.get("EXP"), "data.EXP")

    # The strongest identifier present decides alone: acting on a key because a weaker field matched while a stronger
    # one named another vault could rotate the wrong key.
    if url is not None:
        managed = scope.find_key(key_name=key_name, vault_host=url.host)
        where = f"vault host {url.host}"
    elif vault_name is not None:
        managed = scope.find_key(key_name=key_name, vault_name=vault_name)
        where = f"vault {vault_name}"
    elif common.topic is not None:
        vault = scope.find_vault(resource_id=common.topic)
        managed = scope.find_key(key_name=key_name, vault_name=vault.name) if vault is not None else None
        where = f"vault {common.topic}"
    else:
        malformed("data.Id: missing, and neither data.VaultName nor the topic names the vault")
    if managed is None:
        reject(
            RejectReason.OUTSIDE_INVENTORY, f"key {describe_value(key_name)} in {describe_value(where)} is not managed"
        )

    return cls(
        event_id=common.event_id,
        event_time=common.event_time,
        key=managed,
        key_ref=managed.ref,
        version=version,
        vault_name=managed.vault.name,
        nbf=nbf,
        exp=exp,
        topic=common.topic,
        schema=common.schema,
    )


def vault_event(common: Common, data: Fields, scope: ManagedScope) -> VaultAccessPolicyChanged:
    url = _object_url(data)
    vault_name = text(data, "VaultName")
    if url is not None:
        vault = scope.find_vault(vault_host=url.host)
        where = f"vault host {url.host}"
    elif vault_name is not None:
        vault = scope.find_vault(vault_name=vault_name)
        where = f"vault {vault_name}"
    elif common.topic is not None:
        vault = scope.find_vault(resource_id=common.topic)
        where = f"vault {common.topic}"
    else:
        malformed("data.Id: missing, and neither data.VaultName nor the topic names the vault")
    if vault is None:
        reject(RejectReason.OUTSIDE_INVENTORY, f"{describe_value(where)} is not managed")
    return VaultAccessPolicyChanged(
        event_id=common.event_id,
        event_time=common.event_time,
        vault=vault,
        vault_name=vault.name,
        topic=common.topic,
        schema=common.schema,
    )
