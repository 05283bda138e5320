"""ARM's generic resources (PUT, GET, PATCH, DELETE of any resource as a JSON document), and the writes of a consumer's
key configuration as long-running operations (emulators.operations), for emulators.arm.ArmState.

Split from emulators.arm by concept: this is the resource side; role assignments (emulators.arm_assignments), role
definitions (emulators.arm_role_definitions) and the HTTP layer (emulators.arm_http) are beside it; arm.py keeps the
events. `GenericResources` is a mixin over ArmState's state, named below.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from emulators.arm_identities import check_unique_principals
from emulators.arm_ids import ResourceId, normalize, parse_resource_id
from emulators.arm_resources import (
    KEY_VAULTS,
    LONG_RUNNING_PATCH,
    MYSQL_SERVERS,
    VAULT_ACCESS_POLICIES,
    ArmError,
    apply_access_policy_update,
    build_patch,
    build_put,
    key_configuration_changed,
    merge_patch,
)
from emulators.core import EventSink, MovableClock
from emulators.operations import IN_PROGRESS, Operation, Operations

VAULT_ACCESS_POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged"
WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"


@dataclass(frozen=True)
class Call:
    """Who called and how: what an ARM event reports about the request."""

    caller_oid: str
    claims: dict[str, str]
    method: str
    url: str
    client_ip: str
    client_request_id: str
    correlation_id: str

    @classmethod
    def internal(cls, method: str = "PUT") -> Call:
        return cls("", {}, method, "", "127.0.0.1", str(uuid.uuid4()), str(uuid.uuid4()))


class ConsumerHook(Protocol):
    def on_write(self, resource_id: str, resource_type: str) -> None: ...
    def prove(self, document: dict[str, Any]) -> dict[str, str] | None: ...
    def on_delete(self, resource_id: str) -> None: ...


class GenericResources:
    """Resources as documents, and their long-running writes; mixed into ArmState, whose state it uses."""

    _lock: threading.RLock
    _clock: MovableClock
    _events: EventSink
    _resources: dict[str, dict[str, Any]]
    _vaults: dict[str, Any]
    operations: Operations
    consumer_hook: ConsumerHook | None

    def resource(self, resource_id: str) -> dict[str, Any] | None: ...  # ArmState's
    def _check_scope(self, scope: str) -> str: ...  # ArmState's
    def _evidence(self, call: Call, scope: str, action: str, target_role: str | None) -> dict[str, Any]: ...
    def _emit(
        self,
        event_type: str,
        resource_uri: str,
        operation: str,
        provider: str,
        call: Call,
        evidence: dict[str, Any],
        *,
        include_http: bool,
    ) -> None: ...

    # ----------------------------------------------------------------------------------------- generic resources
    def get_resource(self, resource_id: str) -> dict[str, Any]:
        found = self.resource(resource_id)
        if found is None:
            rid = parse_resource_id(resource_id)
            what = f"{rid.resource_type}/{rid.name}" if rid else resource_id
            group = rid.resource_group if rid else "?"
            raise ArmError(
                404, "ResourceNotFound", f"The Resource '{what}' under resource group '{group}' was not found."
            )
        return found

    def put_resource(self, resource_id: str, body: object, call: Call) -> tuple[int, dict[str, Any], str | None]:
        """(status, document, operation id): 202 and an operation when it replaces a consumer's key configuration."""
        rid = self._resource_id(resource_id)
        if rid.resource_type.lower() == VAULT_ACCESS_POLICIES:
            return 200, self._update_access_policies(resource_id, body, call), None
        return self._write(rid, "PUT", body, call)

    def patch_resource(self, resource_id: str, body: object, call: Call) -> tuple[dict[str, Any], str | None]:
        """The document as it stands and, for long-running types, the id of the operation (timed or finished)."""
        rid = self._resource_id(resource_id)
        _, document, operation = self._write(rid, "PATCH", body, call)
        return document, operation

    def _write(self, rid: ResourceId, method: str, body: object, call: Call) -> tuple[int, dict[str, Any], str | None]:
        """Validate at once (a bad request is refused synchronously, as ARM does); apply at once, or, for a key
        change of a long-running type, start an operation that applies it when it is due."""
        long_running = rid.resource_type.lower() in LONG_RUNNING_PATCH
        with self._lock:
            previous = self._resources.get(str(rid).lower())
            if previous is None and method == "PATCH":
                self.get_resource(str(rid))  # raises the 404
            if long_running:
                self._refuse_while_in_flight(rid, method)
            evidence = self._evidence(call, str(rid), f"{rid.resource_type}/write", None)
            build = build_put if method == "PUT" else build_patch
            try:
                document = build(rid, previous, body, self._clock.now())  # type: ignore[arg-type]
                check_unique_principals(document, self._resources.values())  # no two identities share a principal
            except ArmError:
                if long_running:
                    self.operations.count_write(str(rid), method, refused=True)
                raise
            operation: Operation | None = None
            if long_running:
                self.operations.count_write(str(rid), method, refused=False)
                timed = previous is not None and key_configuration_changed(rid, previous, document)
                if timed or method == "PATCH":
                    operation = self.operations.start(
                        str(rid),
                        rid.namespace,
                        document.get("location", "westeurope"),
                        method,
                        body=body,
                        caller={"call": dataclasses.asdict(call), "evidence": evidence},
                        timed=timed,
                    )
                if timed:
                    assert operation is not None and previous is not None
                    return 202, self._shown(previous), operation.id
            self._resources[str(rid).lower()] = document
        self._after_write(rid, previous, document, call, evidence)
        if self.consumer_hook is not None:
            self.consumer_hook.on_write(str(rid), rid.resource_type)
        status = 202 if operation is not None else 200 if previous else 201
        return status, copy.deepcopy(self.resource(str(rid)) or document), operation.id if operation else None

    def _refuse_while_in_flight(self, rid: ResourceId, method: str) -> None:
        running = self.operations.in_flight(str(rid))
        if running is None:
            return
        self.operations.count_write(str(rid), method, refused=True)
        # See emulators.operations for where this code comes from.
        raise ArmError(
            409,
            "AnotherOperationInProgress",
            f"Operation on '{rid.resource_type}/{rid.name}' cannot be performed because another operation "
            f"('{running.id}', {running.method}) is in progress on it. Retry once it has completed.",
        )

    def complete_due_operations(self) -> int:
        """Finish every timed operation whose time has come (the lifecycle tick calls this; so do status reads)."""
        finished = 0
        for operation in self.operations.due():
            self._complete(operation)
            finished += 1
        return finished

    def _complete(self, operation: Operation) -> None:
        """Apply the write against the resource as it is now, after the consumer proved it can use the new key
        (wrap and unwrap its DEK under it as its identity); otherwise fail and leave the resource as it was."""
        rid = self._resource_id(operation.resource_id)
        call = Call(**operation.caller["call"])
        with self._lock:
            if operation.status != IN_PROGRESS:
                return
            previous = self._resources.get(str(rid).lower())
            if previous is None:
                self.operations.finish(operation, {"code": "ResourceNotFound", "message": "deleted meanwhile"})
                return
            try:
                build = build_put if operation.method == "PUT" else build_patch
                document = build(rid, previous, operation.body, self._clock.now())
            except ArmError as exc:
                self.operations.finish(operation, {"code": exc.code, "message": exc.message})
                return
        problem = self.consumer_hook.prove(copy.deepcopy(document)) if self.consumer_hook else None
        if problem is not None:
            self.operations.finish(operation, problem)
            return
        with self._lock:
            self._resources[str(rid).lower()] = document
        self.operations.finish(operation)
        self._after_write(rid, previous, document, call, operation.caller["evidence"])
        if self.consumer_hook is not None:
            self.consumer_hook.on_write(str(rid), rid.resource_type)

    def show_resource(self, resource_id: str) -> dict[str, Any]:
        """What a GET answers: due operations completed first; one still running shows as `Updating`."""
        self.complete_due_operations()
        return self._shown(self.get_resource(resource_id))

    def _shown(self, document: dict[str, Any]) -> dict[str, Any]:
        shown = copy.deepcopy(document)
        if self.operations.in_flight(shown["id"]) is not None:
            shown.setdefault("properties", {})["provisioningState"] = "Updating"
            # A server that cannot reach its key says so even mid-update: Inaccessible is what its users see.
            if shown["type"].lower() == MYSQL_SERVERS and shown["properties"].get("state") != "Inaccessible":
                shown["properties"]["state"] = "Updating"
        return shown

    def delete_resource(self, resource_id: str, call: Call) -> bool:
        rid = self._resource_id(resource_id)
        with self._lock:
            if str(rid).lower() not in self._resources:
                return False
            evidence = self._evidence(call, str(rid), f"{rid.resource_type}/delete", None)
            del self._resources[str(rid).lower()]
            self._vaults.pop(str(rid).lower(), None)
        if self.consumer_hook is not None:
            self.consumer_hook.on_delete(str(rid))
        self._emit(
            DELETE_SUCCESS, str(rid), f"{rid.resource_type}/delete", rid.namespace, call, evidence, include_http=True
        )
        return True

    def resources_of_type(self, resource_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(d) for d in self._resources.values() if d["type"].lower() == resource_type.lower()]

    def set_properties(self, resource_id: str, changes: dict[str, Any]) -> None:
        """What the service itself changes on a resource (read-only state, an automatic key move): merged into
        `properties` (null deletes), no write event, as no caller wrote it."""
        with self._lock:
            document = self._resources.get(normalize(resource_id).lower())
            if document is not None:
                document["properties"] = merge_patch(document.get("properties", {}), changes)

    def write_in_flight(self, resource_id: str) -> bool:
        return self.operations.in_flight(normalize(resource_id)) is not None

    def operation(self, operation_id: str) -> Operation | None:
        """The operation, after completing any that are due (so a poller never reads a stale status)."""
        self.complete_due_operations()
        return self.operations.get(operation_id)

    def _resource_id(self, resource_id: str) -> ResourceId:
        rid = parse_resource_id(resource_id)
        if rid is None:
            raise ArmError(400, "InvalidResourceId", f"not a resource id ({resource_id!r})")
        self._check_scope(str(rid))
        return rid

    def _update_access_policies(self, resource_id: str, body: object, call: Call) -> dict[str, Any]:
        rid = self._resource_id(resource_id)
        vault_rid = dataclasses.replace(rid, types=rid.types[:-1], names=rid.names[:-1])
        with self._lock:
            previous = self._resources.get(str(vault_rid).lower())
            if previous is None:
                self.get_resource(str(vault_rid))
            evidence = self._evidence(call, str(vault_rid), "Microsoft.KeyVault/vaults/accessPolicies/write", None)
            policies = apply_access_policy_update(previous, rid.name, body)
            document = build_patch(vault_rid, previous, {"properties": {"accessPolicies": policies}}, self._clock.now())
            self._resources[str(vault_rid).lower()] = document
        self._after_write(vault_rid, previous, document, call, evidence)
        return {
            "id": str(rid),
            "name": rid.name,
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "properties": {"accessPolicies": policies},
        }

    def _after_write(self, rid: ResourceId, previous: dict | None, document: dict, call: Call, evidence: dict) -> None:
        self._emit(
            WRITE_SUCCESS,
            str(rid),
            f"{rid.resource_type}/write",
            rid.namespace,
            call,
            evidence,
            include_http=previous is not None,
        )
        if rid.resource_type.lower() != KEY_VAULTS or previous is None:
            return
        before, after = previous.get("properties", {}), document.get("properties", {})
        if any(before.get(k) != after.get(k) for k in ("accessPolicies", "enableRbacAuthorization")):
            self._events.emit(
                topic=str(rid),
                event_type=VAULT_ACCESS_POLICY_CHANGED,
                subject=rid.name,
                data={
                    "Id": after.get("vaultUri", f"https://{rid.name}.vault.azure.net/"),
                    "VaultName": rid.name,
                    "ObjectType": "Vault",
                    "ObjectName": rid.name,
                    "Version": None,
                    "NBF": None,
                    "EXP": None,
                },
            )
