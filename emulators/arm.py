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

ArmState is assembled from one module per concept: role assignments (emulators.arm_assignments), role definitions
(emulators.arm_role_definitions), generic resources and their long-running writes (emulators.arm_generic); this
module keeps the tenant's state, the `Authorizer`, seeding, snapshots, the caller's evidence and the events. The HTTP
layer is emulators.arm_http; `arm_routes` is re-exported here.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

from emulators.arm_assignments import RoleAssignment, RoleAssignments
from emulators.arm_custom_roles import role_from_state, role_to_state
from emulators.arm_generic import Call, ConsumerHook, GenericResources
from emulators.arm_http import arm_routes
from emulators.arm_ids import is_at_or_above, normalize, parse_resource_id, resource_group_of, subscription_of
from emulators.arm_resources import KEY_VAULTS, ArmError
from emulators.arm_role_definitions import RoleDefinitions
from emulators.arm_roles import ROLES_BY_GUID, RoleDefinition
from emulators.core import EventSink, MovableClock
from emulators.operations import DEFAULT_LRO_SECONDS, Operations
from emulators.rbac_propagation import DEFAULT_MAX_SECONDS, RbacPropagation

# arm_routes lives in emulators.arm_http since the split; the host and the tests import it from here.
__all__ = ["ArmState", "RoleAssignment", "VaultRegistration", "arm_routes"]


def _matching(assignments: Any, principal_id: str, scope: str) -> list[RoleAssignment]:
    return [a for a in assignments if a.principal_id.lower() == principal_id.lower() and is_at_or_above(a.scope, scope)]


@dataclass(frozen=True)
class VaultRegistration:
    resource_id: str
    location: str
    vault_uri: str
    soft_delete_retention_days: int = 90
    purge_protection: bool = True


class ArmState(RoleAssignments, RoleDefinitions, GenericResources):
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

    def register_resource(self, document: dict[str, Any], *, refresh: dict[str, Any] | None = None) -> None:
        """Hold `document` as a resource (a Managed HSM, emulators.managed_hsm); one already held (restored from a
        snapshot) is kept, with only the `refresh` properties (a new endpoint) updated."""
        key = normalize(document["id"]).lower()
        with self._lock:
            existing = self._resources.get(key)
            if existing is None:
                self._resources[key] = copy.deepcopy(document)
            else:
                existing.setdefault("properties", {}).update(refresh or {})

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

    # ----------------------------------------------------------------------------- scope, caller and events
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
