"""Azure Resource Manager emulator: role assignments, built-in role definitions and generic resources.

What it answers is what `AuthorizationManagementClient` (api 2022-04-01) and a generic-resource client send, over
HTTPS, with `Authorization: Bearer <token>` (an unsigned JWT-shaped token whose `oid` claim names the caller).
It is also the Key Vault emulator's `Authorizer`: `data_actions(principal, scope)` answers from the assignments held
here, so revoking an assignment over the wire really takes access away, but only once the change has propagated
(emulators.rbac_propagation: ARM lists it at once, Key Vault applies it up to `rbac_propagation_max_seconds` later).
The control-plane check of a caller (`enforce_caller_rbac`) and role definition changes stay immediate.

Every successful write raises the `Microsoft.Resources.Resource{Write,Delete}Success` event Azure raises on the
resource group (or subscription) system topic. Like Azure's, the payload describes the caller's own authorization,
not the assignment's role or principal: a subscriber must list the scope to learn what changed.

Behaviour chosen where Azure leaves a choice: a PATCH of a MySQL flexible server or a disk encryption set, and a PUT
of an existing one that changes its key configuration, is a long-running operation that takes time (answered 202
with `Azure-AsyncOperation` and `Location` headers; see emulators.operations for its timing, what a GET shows
meanwhile and the 409 a second write gets). Token expiry is not checked (the emulated clock
may be moved far ahead of the SDK's token cache). Management groups are not modelled: scopes start at a subscription.
Control-plane authorization of the caller is off by default (`enforce_caller_rbac=True` turns it on, including the
Key Vault Data Access Administrator condition).
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.arm_custom_roles import parse_custom_role, role_from_state, role_to_state
from emulators.arm_generic import (
    DELETE_SUCCESS,
    WRITE_SUCCESS,
    Call,
    ConsumerHook,
    GenericResources,
)
from emulators.arm_ids import (
    is_at_or_above,
    is_guid,
    normalize,
    parse_resource_id,
    resource_group_of,
    same_id,
    subscription_of,
)
from emulators.arm_resources import (
    KEY_VAULTS,
    ArmError,
    bad_request,
)
from emulators.arm_roles import ROLES_BY_GUID, RoleDefinition, role_guid_from_id
from emulators.core import EventSink, MovableClock
from emulators.operations import DEFAULT_LRO_SECONDS, IN_PROGRESS, Operations
from emulators.rbac_propagation import DEFAULT_MAX_SECONDS, RbacPropagation

AUTHORIZATION = "/providers/Microsoft.Authorization/"
ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")

_ASSIGNMENT_ITEM = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleAssignments/(?P<name>[^/]+)", re.I)
_ASSIGNMENT_LIST = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleAssignments", re.I)
_DEFINITION_ITEM = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleDefinitions/(?P<name>[^/]+)", re.I)
_DEFINITION_LIST = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleDefinitions", re.I)
_OPERATION = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>[^/]+)/locations/(?P<loc>[^/]+)/"
    r"(?P<kind>azureAsyncOperation|operationResults)/(?P<op>[^/]+)",
    re.I,
)
_FILTER_TERM = re.compile(
    r"(?P<at>atScope\(\))|principalId\s+eq\s+'(?P<pid>[^']*)'|assignedTo\('(?P<assigned>[^']*)'\)", re.I
)
_DEFINITION_FILTER_TERM = re.compile(r"(?P<field>roleName|type)\s+eq\s+'(?P<value>[^']*)'", re.I)


def _utc_text(clock: MovableClock) -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


def _matching(assignments: Any, principal_id: str, scope: str) -> list[RoleAssignment]:
    return [a for a in assignments if a.principal_id.lower() == principal_id.lower() and is_at_or_above(a.scope, scope)]


@dataclass
class RoleAssignment:
    """A stored role assignment; `scope` is normalized ("/subscriptions/...")."""

    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    description: str | None
    condition: str | None
    condition_version: str | None
    created_on: str
    updated_on: str
    created_by: str | None
    updated_by: str | None

    @property
    def id(self) -> str:
        return f"{self.scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{self.name}"

    @property
    def role_guid(self) -> str:
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()

    def to_arm(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": self.role_definition_id,
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "condition": self.condition,
                "conditionVersion": self.condition_version,
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "createdBy": self.created_by,
                "updatedBy": self.updated_by,
                "delegatedManagedIdentityResourceId": None,
                "description": self.description,
            },
        }


@dataclass(frozen=True)
class VaultRegistration:
    resource_id: str
    location: str
    vault_uri: str
    soft_delete_retention_days: int = 90
    purge_protection: bool = True


class ArmState(GenericResources):
    """Role assignments and resources of one tenant/subscription; thread-safe; implements `Authorizer`."""

    def __init__(
        self,
        *,
        events: EventSink,
        clock: MovableClock,
        tenant_id: str,
        subscription_id: str,
        page_size: int = 100,
        enforce_caller_rbac: bool = False,
        rbac_propagation_max_seconds: float = DEFAULT_MAX_SECONDS,
        rbac_propagation_seed: int = 0,
        lro_seconds: float = DEFAULT_LRO_SECONDS,
    ) -> None:
        self._events = events
        self._clock = clock
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.page_size = page_size
        self.enforce_caller_rbac = enforce_caller_rbac
        self._lock = threading.RLock()
        self._assignments: dict[str, RoleAssignment] = {}  # lower-cased id -> assignment
        self._resources: dict[str, dict[str, Any]] = {}  # lower-cased id -> document
        self._vaults: dict[str, VaultRegistration] = {}  # lower-cased id -> registration
        self.operations = Operations(clock, lro_seconds)  # long-running writes, and write counts per resource
        self._custom_roles: dict[str, RoleDefinition] = {}  # lower-cased GUID -> custom role definition
        # What Key Vault's authorization sees: ARM's assignment changes, each applied after its own delay.
        self.rbac: RbacPropagation[RoleAssignment] = RbacPropagation(
            max_seconds=rbac_propagation_max_seconds, seed=rbac_propagation_seed
        )
        # Set by the host when Key Vault runs alongside (emulators.consumers.ConsumerKeys): consumers that are
        # written re-check their key at once, so the state a PATCH's poller reads back is the one they reached.
        self.consumer_hook: ConsumerHook | None = None

    # ----------------------------------------------------------------------------------------------- Authorizer
    def _assignments_for(self, principal_id: str, scope: str) -> list[RoleAssignment]:
        """ARM's own view (listing, control-plane evidence): every change counts at once."""
        with self._lock:
            return _matching(self._assignments.values(), principal_id, scope)

    def _effective_for(self, principal_id: str, scope: str) -> list[RoleAssignment]:
        """Key Vault's view: only the assignment changes that have propagated (emulators.rbac_propagation)."""
        with self._lock:
            return _matching(self.rbac.effective.values(), principal_id, scope)

    def apply_due_rbac(self, now: float) -> int:
        """Let the assignment changes due at `now` (emulated seconds) take effect in Key Vault; how many."""
        with self._lock:
            return self.rbac.apply_due(now)

    def role(self, guid: str) -> RoleDefinition | None:
        """A built-in or custom role definition by GUID: what an assignment's roleDefinitionId names."""
        guid = guid.lower()
        with self._lock:
            return ROLES_BY_GUID.get(guid) or self._custom_roles.get(guid)

    def _roles_for(self, principal_id: str, scope: str) -> list[RoleDefinition]:
        roles = (self.role(a.role_guid) for a in self._effective_for(principal_id, scope))
        return [r for r in roles if r is not None]

    def data_actions(self, principal_id: str, scope: str) -> set[str]:
        """The raw dataActions patterns of every role effectively assigned to the principal at `scope` or any parent
        scope (assignment changes count once they have propagated)."""
        return {p for role in self._roles_for(principal_id, scope) for p in role.data_actions}

    def not_data_actions(self, principal_id: str, scope: str) -> set[str]:
        return {p for role in self._roles_for(principal_id, scope) for p in role.not_data_actions}

    def allows_data_action(self, principal_id: str, scope: str, action: str) -> bool:
        """Azure's data-plane decision: some assigned role grants `action` and does not exclude it itself."""
        return any(role.grants_data_action(action) for role in self._roles_for(principal_id, scope))

    # ------------------------------------------------------------------------------------------ seeding, reading
    def register_vault(
        self,
        resource_id: str,
        *,
        location: str = "westeurope",
        vault_uri: str | None = None,
        soft_delete_retention_days: int = 90,
        purge_protection: bool = True,
    ) -> None:
        """Make a vault an ARM resource (RBAC permission model, no access policies) so it can be read and PATCHed.

        Registering again keeps the stored document (e.g. restored from a snapshot) and refreshes its `vaultUri`.
        """
        rid = parse_resource_id(resource_id)
        if rid is None or rid.resource_type.lower() != KEY_VAULTS:
            raise ValueError(f"resource_id: not a Microsoft.KeyVault/vaults resource id ({resource_id!r})")
        registration = VaultRegistration(
            str(rid),
            location,
            vault_uri or f"https://{rid.name}.vault.azure.net/",
            soft_delete_retention_days,
            purge_protection,
        )
        key = registration.resource_id.lower()
        with self._lock:
            self._vaults[key] = registration
            existing = self._resources.get(key)
            if existing is None:
                self._resources[key] = self._vault_document(registration)
            else:  # restored state survives a restart; only the endpoint (a new port) is refreshed
                existing.setdefault("properties", {})["vaultUri"] = registration.vault_uri

    def _vault_document(self, registration: VaultRegistration) -> dict[str, Any]:
        rid = parse_resource_id(registration.resource_id)
        assert rid is not None
        return {
            "id": registration.resource_id,
            "name": rid.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": registration.location,
            "tags": {},
            "properties": {
                "tenantId": self.tenant_id,
                "sku": {"family": "A", "name": "premium"},
                "vaultUri": registration.vault_uri,
                "enableRbacAuthorization": True,
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": registration.soft_delete_retention_days,
                "enablePurgeProtection": registration.purge_protection,
                "accessPolicies": [],
                "provisioningState": "Succeeded",
            },
        }

    def add_role_assignment(
        self,
        scope: str,
        role_definition_id: str,
        principal_id: str,
        *,
        principal_type: str = "ServicePrincipal",
        name: str | None = None,
    ) -> dict[str, Any]:
        """Seed an assignment without a request (configuration, tests); validated like a PUT, raises no event."""
        body = {
            "properties": {
                "roleDefinitionId": role_definition_id,
                "principalId": principal_id,
                "principalType": principal_type,
            }
        }
        _, document = self.put_role_assignment(scope, name or str(uuid.uuid4()), body, Call.internal(), emit=False)
        return document

    def role_assignments(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a.to_arm() for a in self._assignments.values()]

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._resources.get(normalize(resource_id).lower())
            return copy.deepcopy(found) if found else None

    # ------------------------------------------------------------------------------------ snapshot and restore
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "assignments": [dataclasses.asdict(a) for a in self._assignments.values()],
                    "resources": list(self._resources.values()),
                    "vaults": [dataclasses.asdict(v) for v in self._vaults.values()],
                    "operations": self.operations.snapshot(),
                    "custom_roles": [role_to_state(r) for r in self._custom_roles.values()],
                    "rbac_propagation": self.rbac.snapshot(dataclasses.asdict),
                }
            )

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._assignments = {}
            for item in data.get("assignments", []):
                assignment = RoleAssignment(**item)
                self._assignments[assignment.id.lower()] = assignment
            self._resources = {doc["id"].lower(): copy.deepcopy(doc) for doc in data.get("resources", [])}
            self._vaults = {v["resource_id"].lower(): VaultRegistration(**v) for v in data.get("vaults", [])}
            self.operations.restore(data.get("operations"))
            roles = (role_from_state(r) for r in data.get("custom_roles", []))
            self._custom_roles = {r.guid: r for r in roles}
            if data.get("rbac_propagation") is not None:
                self.rbac.restore(data["rbac_propagation"], lambda item: RoleAssignment(**item))
            else:
                self.rbac.load(self._assignments)

    def reset(self) -> None:
        """Forget assignments, resources and operations; registered vaults stay, back to their registered state."""
        with self._lock:
            self._assignments.clear()
            self.rbac.reset()
            self.operations.reset()
            self._custom_roles.clear()
            self._resources = {key: self._vault_document(v) for key, v in self._vaults.items()}

    # ----------------------------------------------------------------------------------------- role assignments
    def _check_scope(self, scope: str) -> str:
        scope = normalize(scope)
        subscription = subscription_of(scope)
        if subscription is None:
            raise ArmError(400, "InvalidScope", f"scope: must start with /subscriptions/{{id}} ({scope!r})")
        if subscription.lower() != self.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        return scope

    def _evidence(self, call: Call, scope: str, action: str, target_role: str | None) -> dict[str, Any]:
        """How the caller was allowed to act (Azure reports this as `authorization.evidence` in the event)."""
        for assignment in self._assignments_for(call.caller_oid, scope) if call.caller_oid else []:
            role = self.role(assignment.role_guid)
            if role is None or not role.grants_action(action):
                continue
            if role.assignable_role_guids is not None and target_role not in role.assignable_role_guids:
                continue
            return {
                "role": role.role_name,
                "roleAssignmentScope": assignment.scope,
                "roleAssignmentId": assignment.name.replace("-", ""),
                "roleDefinitionId": role.guid.replace("-", ""),
                "principalId": call.caller_oid.replace("-", ""),
                "principalType": assignment.principal_type,
            }
        if self.enforce_caller_rbac and call.caller_oid:
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{call.caller_oid}' with object id '{call.caller_oid}' does not have authorization to "
                f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
                "granted, please refresh your credentials.",
            )
        return {"role": "Subscription Admin"}

    def put_role_assignment(
        self, scope: str, name: str, body: object, call: Call, *, emit: bool = True
    ) -> tuple[int, dict[str, Any]]:
        scope = self._check_scope(scope)
        if not is_guid(name):
            raise ArmError(
                400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid: it must be a GUID."
            )
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            raise bad_request("properties", "required: {roleDefinitionId, principalId, principalType}")
        role_definition_id = properties.get("roleDefinitionId")
        guid = role_guid_from_id(role_definition_id) if isinstance(role_definition_id, str) else None
        if guid is None:
            raise bad_request(
                "properties.roleDefinitionId",
                "must be /subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid} "
                f"({role_definition_id!r})",
                code="InvalidRoleDefinitionId",
            )
        role = self.role(guid)
        if role is None:
            raise ArmError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{guid}' does not exist.",
            )
        if not any(is_at_or_above(allowed, scope) for allowed in role.assignable_scopes):
            raise ArmError(
                400,
                "RoleAssignmentScopeNotAssignableToRoleDefinition",
                f"The role '{role.role_name}' ({guid}) is not assignable at scope '{scope}': its assignableScopes "
                f"are {list(role.assignable_scopes)}.",
            )
        principal_id = properties.get("principalId")
        if not is_guid(principal_id):
            raise bad_request("properties.principalId", f"must be a GUID ({principal_id!r})", code="InvalidPrincipalId")
        principal_type = properties.get("principalType") or "User"
        if principal_type not in PRINCIPAL_TYPES:
            raise bad_request("properties.principalType", f"must be one of {', '.join(PRINCIPAL_TYPES)}")
        canonical_role_id = f"/subscriptions/{self.subscription_id}{AUTHORIZATION}roleDefinitions/{guid}"
        now = _utc_text(self._clock)
        with self._lock:
            evidence = self._evidence(call, scope, ASSIGNMENT_WRITE, guid)
            key = f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower()
            existing = self._assignments.get(key)
            for other in self._assignments.values():
                if (
                    other is not existing
                    and other.role_guid == guid
                    and other.principal_id.lower() == str(principal_id).lower()
                    and same_id(other.scope, scope)
                ):
                    raise ArmError(
                        409,
                        "RoleAssignmentExists",
                        f"The role assignment already exists. The ID of the existing role assignment is {other.name}.",
                    )
            if existing is not None and (
                existing.role_guid != guid or existing.principal_id.lower() != str(principal_id).lower()
            ):
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            assignment = RoleAssignment(
                name=name.lower(),
                scope=scope,
                role_definition_id=canonical_role_id,
                principal_id=str(principal_id).lower(),
                principal_type=principal_type,
                description=properties.get("description"),
                condition=properties.get("condition"),
                condition_version=properties.get("conditionVersion"),
                created_on=existing.created_on if existing else now,
                updated_on=now,
                created_by=existing.created_by if existing else (call.caller_oid or None),
                updated_by=call.caller_oid or None,
            )
            self._assignments[key] = assignment
            self.rbac.record(key, assignment, self._clock.timestamp())
        if emit:
            self._emit(
                WRITE_SUCCESS,
                assignment.id,
                ASSIGNMENT_WRITE,
                "Microsoft.Authorization",
                call,
                evidence,
                include_http=existing is not None,
            )
        return (200 if existing else 201), assignment.to_arm()

    def get_role_assignment(self, scope: str, name: str) -> dict[str, Any]:
        scope = self._check_scope(scope)
        with self._lock:
            found = self._assignments.get(f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower())
        if found is None:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return found.to_arm()

    def delete_role_assignment(self, scope: str, name: str, call: Call) -> dict[str, Any] | None:
        """The deleted assignment, or None when there was none (ARM answers 204 then)."""
        scope = self._check_scope(scope)
        with self._lock:
            key = f"{scope.rstrip('/')}{AUTHORIZATION}roleAssignments/{name}".lower()
            found = self._assignments.get(key)
            if found is None:
                return None
            evidence = self._evidence(call, scope, ASSIGNMENT_DELETE, found.role_guid)
            del self._assignments[key]
            self.rbac.record(key, None, self._clock.timestamp())
        self._emit(
            DELETE_SUCCESS, found.id, ASSIGNMENT_DELETE, "Microsoft.Authorization", call, evidence, include_http=True
        )
        return found.to_arm()

    def list_role_assignments(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        """ARM's filters: none (at, above and below), atScope() (at and above), principalId eq / assignedTo
        (that principal at, above and below), and their conjunction with `and`."""
        scope = self._check_scope(scope)
        at_scope_only = False
        principal: str | None = None
        for term in re.split(r"\s+and\s+", (filter_text or "").strip(), flags=re.I) if filter_text else []:
            match = _FILTER_TERM.fullmatch(term.strip())
            if not match:
                raise ArmError(400, "InvalidFilter", f"$filter: unsupported expression ({term.strip()!r})")
            if match.group("at"):
                at_scope_only = True
            else:
                principal = (match.group("pid") or match.group("assigned") or "").lower()
        with self._lock:
            chosen = []
            for a in self._assignments.values():
                above = is_at_or_above(a.scope, scope)
                related = above if at_scope_only else above or is_at_or_above(scope, a.scope)
                if related and (principal is None or a.principal_id.lower() == principal):
                    chosen.append(a.to_arm())
        return chosen

    # ------------------------------------------------------------------------------------------ role definitions
    def get_role_definition(self, scope: str, guid: str) -> dict[str, Any]:
        role = self.role(guid)
        if role is None:
            raise ArmError(404, "RoleDefinitionDoesNotExist", f"The role definition '{guid}' could not be found.")
        return role.to_arm(subscription_of(scope))

    def list_role_definitions(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        wanted: dict[str, str] = {}
        for term in re.split(r"\s+and\s+", filter_text.strip(), flags=re.I) if filter_text else []:
            match = _DEFINITION_FILTER_TERM.fullmatch(term.strip())
            if not match:
                raise ArmError(400, "InvalidFilter", f"$filter: unsupported expression ({term.strip()!r})")
            wanted[match.group("field").lower()] = match.group("value").lower()
        with self._lock:
            customs = [
                r
                for r in self._custom_roles.values()
                if any(is_at_or_above(a, scope) or is_at_or_above(scope, a) for a in r.assignable_scopes)
            ]
        roles = [
            r
            for r in (*ROLES_BY_GUID.values(), *customs)
            if wanted.get("rolename", r.role_name.lower()) == r.role_name.lower()
            and wanted.get("type", r.role_type.lower()) == r.role_type.lower()
        ]
        return [r.to_arm(subscription_of(scope)) for r in roles]

    def put_role_definition(self, scope: str, guid: str, body: object, call: Call) -> tuple[int, dict[str, Any]]:
        """Create or replace a custom role; 201 when new, 200 when replaced."""
        scope = self._check_scope(scope)
        if not is_guid(guid):
            raise ArmError(
                400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid: it must be a GUID."
            )
        guid = guid.lower()
        with self._lock:
            previous = self._custom_roles.get(guid)
            role = parse_custom_role(
                guid,
                body,
                subscription_id=self.subscription_id,
                now=_utc_text(self._clock),
                caller=call.caller_oid or None,
                previous=previous,
            )
            for other in (*ROLES_BY_GUID.values(), *self._custom_roles.values()):
                if other.guid != guid and other.role_name.lower() == role.role_name.lower():
                    raise ArmError(
                        409,
                        "RoleDefinitionWithSameNameExists",
                        f"A role definition cannot be updated with a name that already exists ('{role.role_name}').",
                    )
            self._custom_roles[guid] = role
        return (200 if previous else 201), role.to_arm(self.subscription_id)

    def delete_role_definition(self, scope: str, guid: str, call: Call) -> dict[str, Any] | None:
        """The deleted custom role, or None when there was none; refused while any assignment names it."""
        self._check_scope(scope)
        guid = guid.lower()
        if guid in ROLES_BY_GUID:
            raise ArmError(400, "RoleDefinitionIdIsBuiltIn", f"The built-in role '{guid}' cannot be deleted.")
        with self._lock:
            role = self._custom_roles.get(guid)
            if role is None:
                return None
            if any(a.role_guid == guid for a in self._assignments.values()):
                raise ArmError(
                    409,
                    "RoleDefinitionHasAssignments",
                    f"There are existing role assignments referencing role '{role.role_name}' ({guid}); delete them "
                    "before deleting the role definition.",
                )
            del self._custom_roles[guid]
        return role.to_arm(self.subscription_id)

    # ----------------------------------------------------------------------------------------------------- events
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
    ) -> None:
        group = resource_group_of(resource_uri)
        topic = f"/subscriptions/{self.subscription_id}" + (f"/resourceGroups/{group}" if group else "")
        data: dict[str, Any] = {
            "authorization": {"scope": resource_uri, "action": operation, "evidence": evidence},
            "claims": call.claims,
            "correlationId": call.correlation_id,
            "resourceProvider": provider,
            "resourceUri": resource_uri,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
        }
        if include_http:  # Azure includes httpRequest only for updates of existing resources and deletes
            data["httpRequest"] = {
                "clientRequestId": call.client_request_id,
                "clientIpAddress": call.client_ip,
                "method": call.method,
                "url": call.url,
            }
        self._events.emit(topic=topic, event_type=event_type, subject=resource_uri, data=data)


# ---------------------------------------------------------------------------------------------------- HTTP layer
def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _decode_claims(authorization: str) -> dict[str, Any] | None:
    """The payload of `Bearer header.payload.signature` (base64url JSON), or None if it is not that shape."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _event_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as Azure puts them in ARM events: string values, object id also under its long claim name."""
    shown = {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}
    if "oid" in claims:
        shown["http://schemas.microsoft.com/identity/claims/objectidentifier"] = str(claims["oid"])
    if "tid" in claims:
        shown["http://schemas.microsoft.com/identity/claims/tenantid"] = str(claims["tid"])
    return shown


class _ArmApi:
    def __init__(self, state: ArmState) -> None:
        self.state = state

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        headers = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": correlation}
        authorization = request.headers.get("Authorization")
        if not authorization:
            return _error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {
                    **headers,
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/", '
                    'error="invalid_token", error_description="The authentication failed because of missing '
                    "'Authorization' header.\"",
                },
            )
        claims = _decode_claims(authorization)
        if claims is None or not isinstance(claims.get("oid"), str):
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.", headers)
        if "api-version" not in request.query:
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                headers,
            )
        call = Call(
            caller_oid=claims["oid"],
            claims=_event_claims(claims),
            method=request.method,
            url=str(request.url),
            client_ip=request.remote or "127.0.0.1",
            client_request_id=request.headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
            correlation_id=correlation,
        )
        try:
            response = await self._route(request, call)
        except ArmError as exc:
            return _error(exc.status, exc.code, exc.message, headers)
        response.headers.update(headers)
        return response

    async def _body(self, request: web.Request) -> object:
        if not request.can_read_body:
            return None
        try:
            return await request.json()
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"body: not valid JSON ({exc})") from exc

    async def _route(self, request: web.Request, call: Call) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        state = self.state
        if match := _ASSIGNMENT_ITEM.fullmatch(path):
            scope, name = match.group("scope") or "/", match.group("name")
            if method == "GET":
                return web.json_response(state.get_role_assignment(scope, name))
            if method == "PUT":
                status, document = state.put_role_assignment(scope, name, await self._body(request), call)
                return web.json_response(document, status=status)
            if method == "DELETE":
                deleted = state.delete_role_assignment(scope, name, call)
                return web.json_response(deleted) if deleted else web.Response(status=204)
        elif match := _ASSIGNMENT_LIST.fullmatch(path):
            if method == "GET":
                items = state.list_role_assignments(match.group("scope") or "/", request.query.get("$filter"))
                return self._page(request, items)
        elif match := _DEFINITION_ITEM.fullmatch(path):
            scope, name = match.group("scope") or "/", match.group("name")
            if method == "GET":
                return web.json_response(state.get_role_definition(scope, name))
            if method == "PUT":
                status, document = state.put_role_definition(scope, name, await self._body(request), call)
                return web.json_response(document, status=status)
            if method == "DELETE":
                deleted = state.delete_role_definition(scope, name, call)
                return web.json_response(deleted) if deleted else web.Response(status=204)
        elif match := _DEFINITION_LIST.fullmatch(path):
            if method == "GET":
                items = state.list_role_definitions(match.group("scope"), request.query.get("$filter"))
                return self._page(request, items)
        elif match := _OPERATION.fullmatch(path):
            if method == "GET":
                return self._operation(request, match)
        elif parse_resource_id(path) is not None:
            return await self._resource(request, path, call)
        else:
            raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{path}'.")
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on '{path}'.")

    async def _resource(self, request: web.Request, path: str, call: Call) -> web.StreamResponse:
        state = self.state
        if request.method == "GET":
            return web.json_response(state.show_resource(path))
        if request.method in ("PUT", "PATCH"):
            body = await self._body(request)
            if request.method == "PUT":
                status, document, operation = state.put_resource(path, body, call)
            else:
                document, operation = state.patch_resource(path, body, call)
                status = 202 if operation else 200
            if operation is None:
                return web.json_response(document, status=status)
            return web.Response(status=202, headers=self._operation_headers(request, operation))
        if request.method == "DELETE":
            return web.Response(status=200 if state.delete_resource(path, call) else 204)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported on '{path}'.")

    def _operation_headers(self, request: web.Request, operation_id: str) -> dict[str, str]:
        found = self.state.operations.get(operation_id)
        assert found is not None
        base = f"{request.url.scheme}://{request.host}/subscriptions/{self.state.subscription_id}/providers/"
        tail = f"{found.namespace}/locations/{found.location}"
        api = request.query["api-version"]
        return {
            "Azure-AsyncOperation": f"{base}{tail}/azureAsyncOperation/{found.id}?api-version={api}",
            "Location": f"{base}{tail}/operationResults/{found.id}?api-version={api}",
            "Retry-After": str(self.state.operations.retry_after(found)),
        }

    def _operation(self, request: web.Request, match: re.Match[str]) -> web.StreamResponse:
        operation = self.state.operation(match.group("op"))
        if operation is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{match.group('op')}' was not found.")
        waiting = {"Retry-After": str(self.state.operations.retry_after(operation))}
        if match.group("kind").lower() == "azureasyncoperation":
            return web.json_response(
                operation.to_status(request.path), headers=waiting if operation.status == IN_PROGRESS else None
            )
        # operationResults: 202 while running, then the resource (or the operation's error), as ARM answers it.
        if operation.status == IN_PROGRESS:
            return web.Response(status=202, headers={**waiting, "Location": str(request.url)})
        if operation.error is not None:
            raise ArmError(400, operation.error["code"], operation.error["message"])
        found = self.state.resource(operation.resource_id)
        return web.json_response(found) if found else web.Response(status=204)

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        try:
            start = int(request.query.get("$skipToken", "0"))
        except ValueError as exc:
            raise ArmError(400, "InvalidSkipToken", "$skipToken: not a token this server issued") from exc
        end = start + self.state.page_size
        body: dict[str, Any] = {"value": items[start:end]}
        if end < len(items):
            body["nextLink"] = str(request.url.update_query({"$skipToken": str(end)}))
        return web.json_response(body)


def arm_routes(state: ArmState) -> list[web.RouteDef]:
    """Every ARM path, mounted at "/" on the ARM HTTPS listener (it owns the whole listener)."""
    api = _ArmApi(state)
    return [web.route("*", "/{tail:.*}", api.dispatch)]
