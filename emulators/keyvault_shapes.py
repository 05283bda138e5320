"""What Key Vault answers looks like: a key's bundle, a list item, a deleted key, their attributes (which depend on
the request's api-version and on the vault's soft-delete settings, read from ARM at once) and a page with its
nextLink, in the order and shape of the recorded responses.

Split from emulators.keyvault: `KeyShapes` is a mixin over VaultService's `store` and `authorizer`.
"""

from __future__ import annotations

import contextvars
from typing import Any

from aiohttp import web

from emulators.keyvault_keys import DeletedKey, KeyVersion, StoredKey, bad_parameter
from emulators.keyvault_requests import b64url
from emulators.keyvault_store import VaultStore

MAX_PAGE = 25
# Recorded responses carry hsmPlatform from 7.5 on ("0" for software keys); 7.4 responses have none.
NO_HSM_PLATFORM_APIS = frozenset({"7.4"})
HSM_PLATFORM_HSM = "2"
HSM_PLATFORM_SOFTWARE = "0"
# The api-version of the request being answered: the wire shape of attributes depends on it, and threading it
# through every bundle/item/page call would only add noise.
api_version: contextvars.ContextVar[str] = contextvars.ContextVar("api_version", default="2025-07-01")


def recovery_attributes(vault_properties: dict[str, Any] | None) -> tuple[int, str]:
    """(recoverableDays, recoveryLevel) as Key Vault derives them from the vault's soft-delete settings: the
    "Customized" prefix when retention is under 90 days, "+Purgeable" unless purge protection is on."""
    properties = vault_properties or {}
    days = int(properties.get("softDeleteRetentionInDays") or 90)
    level = "Recoverable" if properties.get("enableSoftDelete", True) is not False else "Purgeable"
    if level == "Recoverable":
        if days < 90:
            level = "CustomizedRecoverable"
        if not properties.get("enablePurgeProtection"):
            level += "+Purgeable"
    return days, level


class KeyShapes:
    """The wire shapes of one vault's answers; mixed into VaultService, whose state it uses."""

    store: VaultStore
    authorizer: Any

    def vault_document(self) -> dict[str, Any] | None:
        """The vault's ARM resource (soft delete, permission model, access policies), when ARM holds the vault:
        Key Vault answers from the vault's configuration as it is now, so an ARM change takes effect at once."""
        reader = getattr(self.authorizer, "resource", None)
        return reader(self.store.resource_id) if reader else None

    def vault_properties(self) -> dict[str, Any] | None:
        document = self.vault_document()
        return document.get("properties") if document else None

    def attributes(self, version: KeyVersion) -> dict[str, Any]:
        """In the order the recorded responses show: enabled, key_size, nbf, exp, created, updated,
        recoveryLevel, recoverableDays, exportable, hsmPlatform."""
        days, level = recovery_attributes(self.vault_properties())
        out: dict[str, Any] = {"enabled": version.enabled, "key_size": version.key_size}
        if version.nbf is not None:
            out["nbf"] = version.nbf
        if version.exp is not None:
            out["exp"] = version.exp
        out.update(
            created=version.created,
            updated=version.updated,
            recoveryLevel=level,
            recoverableDays=days,
            exportable=version.exportable,
        )
        if api_version.get() not in NO_HSM_PLATFORM_APIS:
            out["hsmPlatform"] = HSM_PLATFORM_HSM if version.hsm else HSM_PLATFORM_SOFTWARE
        return out

    def bundle(self, key: StoredKey, version: KeyVersion) -> dict[str, Any]:
        n, e = version.public_jwk_numbers()
        body: dict[str, Any] = {
            "key": {
                "kid": self.store.key_id(key.name, version.version),
                "kty": version.kty,
                "key_ops": list(version.key_ops),
                "n": b64url(n),
                "e": b64url(e),
            },
            "attributes": self.attributes(version),
        }
        if version.tags:
            body["tags"] = dict(version.tags)
        return body

    def deleted_bundle(self, deleted: DeletedKey) -> dict[str, Any]:
        body = self.bundle(deleted.key, deleted.key.latest)
        body.update(
            recoveryId=f"{self.store.url}/deletedkeys/{deleted.key.name}",
            deletedDate=deleted.deleted_date,
            scheduledPurgeDate=deleted.scheduled_purge_date,
        )
        return body

    def item(self, kid: str, version: KeyVersion) -> dict[str, Any]:
        body: dict[str, Any] = {"kid": kid, "attributes": self.attributes(version)}
        if version.tags:
            body["tags"] = dict(version.tags)
        return body

    def page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        raw_max = request.query.get("maxresults")
        try:
            size = MAX_PAGE if raw_max in (None, "") else int(raw_max)
        except ValueError:
            raise bad_parameter(f"maxresults: expected an integer from 1 to {MAX_PAGE}, got {raw_max!r}") from None
        if not 1 <= size <= MAX_PAGE:
            raise bad_parameter(f"maxresults: expected an integer from 1 to {MAX_PAGE}, got {raw_max!r}")
        try:
            start = int(request.query.get("$skiptoken", "0"))
        except ValueError:
            raise bad_parameter("$skiptoken: not a continuation token from this vault") from None
        chunk = items[start : start + size]
        next_link = None
        if start + size < len(items):
            api = request.query.get("api-version", "")
            next_link = f"{self.store.url}{request.path}?api-version={api}&$skiptoken={start + size}&maxresults={size}"
        return web.json_response({"value": chunk, "nextLink": next_link})
