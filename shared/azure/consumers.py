"""The Consumers port over azure-mgmt-resource's generic resources: MySQL flexible servers and disk encryption sets
read and moved to a new key version through ARM.

Generic resources (`get_by_id` / `begin_update_by_id`) rather than the typed MySQL and Compute clients: two small
documents do not justify two more SDKs, and the api-version per type is all that differs. The PATCH is a
long-running operation of minutes while an Event Grid delivery or a queue worker must not wait that long: it is
started (`start_move`, ARM's 202 and its `Azure-AsyncOperation` URL kept) and its status read once per check
(`move_status`); the resource's state is read back afterwards, never assumed from what was sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.polling import PollingMethod
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import GenericResource

from shared.azure.arm_clients import PerSubscription
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.errors import InvalidInput, NotFound, OperationInProgress, UnexpectedResponse
from shared.model import ConsumerKind, ConsumerState
from shared.moves import MoveStarted, MoveStatus
from shared.untrusted import describe_value

API_VERSIONS = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: "2023-12-30",
    ConsumerKind.DISK_ENCRYPTION_SET: "2024-03-02",
}
IDENTITY_API_VERSION = "2023-01-31"  # Microsoft.ManagedIdentity/userAssignedIdentities
# A user-assigned identity's resource id -> its principal id (None when it cannot be read).
PrincipalResolver = Callable[[str], str | None]
RESOURCE_TYPES = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: "microsoft.dbformysql/flexibleservers",
    ConsumerKind.DISK_ENCRYPTION_SET: "microsoft.compute/diskencryptionsets",
}
_VERSIONED_KEY_URL = re.compile(r"https://[^/\s?#]+/keys/[0-9A-Za-z-]{1,127}/[0-9a-fA-F]{32}", re.I)
_RESOURCE_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/(?P<type>[^/]+/[^/]+)/[^/]+", re.I
)


def require_versioned_key_url(key_url: object) -> str:
    """A consumer may only be pointed at one exact version: `https://{vault}/keys/{name}/{32 hex digits}`.
    A versionless URL would let the service pick "latest" behind the app's back (or be refused by it)."""
    if not isinstance(key_url, str) or not _VERSIONED_KEY_URL.fullmatch(key_url.strip()):
        raise InvalidInput(
            "key_url",
            "must be a versioned Key Vault key URL, https://{vault}/keys/{name}/{version} "
            f"(got {describe_value(key_url, quote=True)})",
        )
    return key_url.strip()


def consumer_kind(kind: str, resource_id: str) -> tuple[ConsumerKind, str]:
    """The kind and subscription of a consumer id; InvalidInput when the id is not of that kind's resource type."""
    try:
        known = ConsumerKind(kind)
    except ValueError:
        known = None
    if known not in API_VERSIONS:
        raise InvalidInput("kind", f"must be one of {', '.join(API_VERSIONS)} (got {describe_value(kind, quote=True)})")
    assert known is not None
    match = _RESOURCE_ID.fullmatch(resource_id.strip().rstrip("/")) if isinstance(resource_id, str) else None
    if match is None or match.group("type").lower() != RESOURCE_TYPES[known]:
        raise InvalidInput(
            "resource_id",
            f"must be a {RESOURCE_TYPES[known]} resource id (got {describe_value(resource_id, quote=True)})",
        )
    return known, match.group("sub")


def _assigned(identity: dict[str, Any], identity_id: str) -> dict[str, Any] | None:
    """`identity.userAssignedIdentities[identity_id]`, matched as ARM matches ids (case-insensitively)."""
    assigned = identity.get("userAssignedIdentities")
    if not isinstance(assigned, dict):
        return None
    for candidate, value in assigned.items():
        if isinstance(candidate, str) and candidate.lower() == identity_id.lower():
            return value if isinstance(value, dict) else {}
    return None


def identities_from_arm(
    kind: ConsumerKind, document: dict[str, Any], resolve: PrincipalResolver | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The principal ids (lower case) the resource reaches its key with, and the identity resource ids whose principal
    could not be found. MySQL: the `dataEncryption` primary and geo-backup user-assigned identities (a flexible
    server takes no other for CMK), each resolved through the server's `identity.userAssignedIdentities`, else a
    read of the identity itself. A DES: its system-assigned identity, or the user-assigned one(s) it holds."""
    identity = document.get("identity") if isinstance(document.get("identity"), dict) else {}
    props = document.get("properties") or {}
    if kind is ConsumerKind.MYSQL_FLEXIBLE_SERVER:
        encryption = props.get("dataEncryption") or {}
        wanted = [
            encryption.get(name)
            for name in ("primaryUserAssignedIdentityId", "geoBackupUserAssignedIdentityId")
            if isinstance(encryption.get(name), str) and encryption.get(name)
        ]
    elif "systemassigned" in str(identity.get("type", "")).lower().replace(" ", "") and identity.get("principalId"):
        return (str(identity["principalId"]).lower(),), ()
    else:
        assigned = identity.get("userAssignedIdentities")
        wanted = [k for k in assigned if isinstance(k, str)] if isinstance(assigned, dict) else []
    principals: list[str] = []
    unresolved: list[str] = []
    for identity_id in dict.fromkeys(w.lower() for w in wanted):
        value = _assigned(identity, identity_id) or {}
        principal = value.get("principalId") or (resolve(identity_id) if resolve is not None else None)
        if isinstance(principal, str) and principal:
            principals.append(principal.lower())
        else:
            unresolved.append(identity_id)
    return tuple(dict.fromkeys(principals)), tuple(unresolved)


def attached_from_arm(
    kind: ConsumerKind, document: dict[str, Any], resolve: PrincipalResolver | None = None
) -> tuple[str, ...]:
    """The principal ids (lower case) of every user-assigned identity attached to a MySQL server (its document's
    value, else a read of the identity): the identities its encryption could be moved to. A DES reaches its key only
    through its own identity. One that cannot be resolved is left out: nothing is protected on a guess."""
    if kind is not ConsumerKind.MYSQL_FLEXIBLE_SERVER:
        return ()
    identity = document.get("identity") if isinstance(document.get("identity"), dict) else {}
    assigned = identity.get("userAssignedIdentities")
    if not isinstance(assigned, dict):
        return ()
    found: list[str] = []
    for identity_id, value in assigned.items():
        principal = value.get("principalId") if isinstance(value, dict) else None
        if not principal and resolve is not None and isinstance(identity_id, str):
            principal = resolve(identity_id.lower())
        if isinstance(principal, str) and principal:
            found.append(principal.lower())
    return tuple(dict.fromkeys(found))


def state_from_arm(
    kind: ConsumerKind, resource_id: str, document: dict[str, Any], resolve: PrincipalResolver | None = None
) -> ConsumerState:
    """What the resource reports, in the REST (camelCase) shape ARM sent; `resolve` reads a user-assigned identity's
    principal id where the resource's own document does not carry it."""
    props = document.get("properties")
    if not isinstance(props, dict):
        raise UnexpectedResponse(f"{kind} {resource_id}: ARM returned no properties")
    if resolve is not None:
        resolve = functools.cache(resolve)  # the identity in use is attached too: read each identity once
    identities, unresolved = identities_from_arm(kind, document, resolve)
    if kind is ConsumerKind.MYSQL_FLEXIBLE_SERVER:
        encryption = props.get("dataEncryption") or {}
        geo = encryption.get("geoBackupKeyURI")
        state = props.get("state")
        inaccessible = isinstance(state, str) and state.lower() == "inaccessible"
        return ConsumerState(
            kind,
            resource_id,
            encryption.get("primaryKeyURI"),
            follows_latest=False,
            available=not inaccessible,
            error=(props.get("stateReason") or "the server reports state Inaccessible") if inaccessible else None,
            other_key_urls=(geo,) if geo else (),
            identities=identities,
            unresolved_identities=unresolved,
            attached_identities=attached_from_arm(kind, document, resolve),
        )
    error = props.get("autoKeyRotationError")
    previous = tuple(k["keyUrl"] for k in props.get("previousKeys") or [] if isinstance(k, dict) and k.get("keyUrl"))
    failed = str(props.get("provisioningState", "")).lower() == "failed"
    message = None
    if isinstance(error, dict) and error:
        message = f"{error.get('code', 'Error')}: {error.get('message', '')}".strip()
    elif failed:
        message = "the disk encryption set reports provisioningState Failed"
    return ConsumerState(
        kind,
        resource_id,
        (props.get("activeKey") or {}).get("keyUrl"),
        follows_latest=bool(props.get("rotationToLatestKeyVersionEnabled")),
        available=message is None,
        error=message,
        other_key_urls=previous,
        identities=identities,
        unresolved_identities=unresolved,
    )


def status_from_arm(body: object) -> MoveStatus:
    """An Azure-AsyncOperation document: `status` InProgress (or any other non-terminal word ARM uses), Succeeded,
    Failed or Canceled, with `error` when it failed."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise UnexpectedResponse("operation status: ARM sent no status")
    status = body["status"].lower()
    if status == "succeeded":
        return MoveStatus("Succeeded")
    if status in ("failed", "canceled", "cancelled"):
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code, message = error.get("code") or body["status"], error.get("message")
        return MoveStatus("Failed", f"{code}: {message}" if message else str(code))
    return MoveStatus("InProgress")


class _StartOnly(PollingMethod):
    """A polling method that polls nothing: it keeps ARM's first answer, so the PATCH is sent and never waited on
    (no poller thread either). The operation is followed later, from a queue message."""

    def __init__(self) -> None:
        self._initial: Any = None

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        self._initial = initial_response

    def run(self) -> None:
        return None

    def status(self) -> str:
        return "InProgress"

    def finished(self) -> bool:
        return True

    def resource(self) -> Any:
        return None

    def operation_url(self) -> str | None:
        """`Azure-AsyncOperation` (else `Location`) of a 202; None when ARM answered 200 (done already)."""
        response = getattr(self._initial, "http_response", None)
        if response is None or response.status_code != 202:
            return None
        return response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")


def _identity_json(identity: Any) -> dict[str, Any]:
    """The SDK's identity model back in ARM's REST shape (what `identities_from_arm` reads)."""
    if identity is None:
        return {}
    assigned = getattr(identity, "user_assigned_identities", None) or {}
    kind = getattr(identity, "type", None)
    return {
        "type": str(getattr(kind, "value", kind) or ""),
        "principalId": getattr(identity, "principal_id", None),
        "userAssignedIdentities": {
            rid: {"principalId": getattr(value, "principal_id", None)} for rid, value in assigned.items()
        },
    }


class AzureConsumers:
    def __init__(
        self,
        credential: TokenCredential,
        *,
        base_url: str = "https://management.azure.com",
        connection_verify: str | bool = True,
    ) -> None:
        self._base_url = base_url
        self._client = PerSubscription(
            ResourceManagementClient, credential, base_url=base_url, connection_verify=connection_verify
        )

    def _properties(self, client: ResourceManagementClient, kind: ConsumerKind, resource_id: str) -> dict[str, Any]:
        try:
            resource = client.resources.get_by_id(resource_id, api_version=API_VERSIONS[kind])
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"{kind} {resource_id}", NotFound) from exc
        if not isinstance(resource.properties, dict):
            raise UnexpectedResponse(f"{kind} {resource_id}: ARM returned no properties")
        return resource.properties

    def get_state(self, kind: str, resource_id: str) -> ConsumerState:
        known, subscription = consumer_kind(kind, resource_id)
        client = self._client(subscription)
        try:
            resource = client.resources.get_by_id(resource_id, api_version=API_VERSIONS[known])
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"{known} {resource_id}", NotFound) from exc
        if not isinstance(resource.properties, dict):
            raise UnexpectedResponse(f"{known} {resource_id}: ARM returned no properties")
        document = {"properties": resource.properties, "identity": _identity_json(resource.identity)}
        return state_from_arm(known, resource_id, document, lambda uami: self._principal_of(uami))

    def _principal_of(self, identity_id: str) -> str | None:
        """A user-assigned identity's principal id, read from the identity itself; None when it cannot be read
        (the caller reports it unresolved rather than guessing)."""
        match = re.match(r"/subscriptions/([^/]+)/", identity_id, re.I)
        if match is None:
            return None
        try:
            found = self._client(match.group(1)).resources.get_by_id(identity_id, api_version=IDENTITY_API_VERSION)
        except SDK_ERRORS:
            return None
        principal = (found.properties or {}).get("principalId") if isinstance(found.properties, dict) else None
        return str(principal) if principal else None

    def start_move(self, kind: str, resource_id: str, key_url: str) -> MoveStarted:
        known, subscription = consumer_kind(kind, resource_id)
        key_url = require_versioned_key_url(key_url)
        client = self._client(subscription)
        current = self._properties(client, known, resource_id)
        # The whole encryption object goes back with only the key changed: the services validate it as a unit
        # (MySQL wants the identity alongside the key; a DES keeps its sourceVault).
        if known is ConsumerKind.MYSQL_FLEXIBLE_SERVER:
            patch = {"dataEncryption": {**(current.get("dataEncryption") or {}), "primaryKeyURI": key_url}}
        else:
            patch = {"activeKey": {**(current.get("activeKey") or {}), "keyUrl": key_url}}
        started = _StartOnly()
        try:
            client.resources.begin_update_by_id(
                resource_id, GenericResource(properties=patch), api_version=API_VERSIONS[known], polling=started
            )
        except HttpResponseError as exc:
            if exc.status_code == 409:  # ServerBusy, AnotherOperationInProgress, ...: busy, not broken
                code = exc.error.code if exc.error else "Conflict"
                raise OperationInProgress(f"{known} {resource_id}: {code}: {exc.message}") from exc
            raise translate_error(exc, f"{known} {resource_id}: moving to {key_url}", NotFound) from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"{known} {resource_id}: moving to {key_url}", NotFound) from exc
        return MoveStarted(started.operation_url())

    def move_status(self, kind: str, resource_id: str, operation_url: str | None) -> MoveStatus:
        known, subscription = consumer_kind(kind, resource_id)
        if operation_url is None:
            return MoveStatus("Succeeded")
        url = self._arm_url(operation_url)
        from azure.core.rest import HttpRequest

        try:
            response = self._client(subscription).send_request(HttpRequest("GET", url))
            response.raise_for_status()
            body = response.json()
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"{known} {resource_id}: operation status", NotFound) from exc
        except ValueError as exc:
            raise UnexpectedResponse(f"{known} {resource_id}: operation status is not JSON") from exc
        return status_from_arm(body)

    def _arm_url(self, operation_url: str) -> str:
        """The app's token goes only to ARM: an operation URL from a queue message must be on ARM's host."""
        parsed, base = urlsplit(str(operation_url)), urlsplit(self._base_url)
        if parsed.scheme != "https" or parsed.netloc.lower() != base.netloc.lower():
            raise InvalidInput("operation_url", f"must be an https URL on {base.netloc}")
        return str(operation_url)

    def close(self) -> None:
        self._client.close()
