"""The AccessControl port over a Managed HSM's local RBAC (azure-keyvault-administration's
KeyVaultAccessControlClient, api-version 2025-07-01), with ARM-shaped scopes and ids (shared.local_rbac).

What local RBAC does not say, and how the port answers anyway:
- no principal type: assignments carry `Unknown`. A Managed HSM does not honour a service principal's group
  membership, so a consumer can never be reaching its key through a group there;
- no creation time: `created_on` is None (a removal that waits for a minimal grant's propagation keeps waiting,
  which only defers narrowing a consumer's own wider grant);
- a listing at a scope shows what applies there from that scope and above, never below: the app lists per key.
Role definitions are read at `/` (the only scope that holds them) by GUID.
"""

from __future__ import annotations

import uuid
from typing import Any

from azure.core.credentials import TokenCredential
from azure.keyvault.administration import KeyVaultAccessControlClient, KeyVaultRoleScope

from shared.arm_ids import role_definition_guid
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.retry import default_retry_policy
from shared.errors import Conflict, InvalidInput, NotFound, UnexpectedResponse
from shared.local_rbac import HsmScopes, RoutedAccessControl
from shared.model import RoleAssignment
from shared.roles.builtin import hsm_role_definition_id
from shared.roles.definitions import RoleDefinition, role_definition_from_arm

UNKNOWN_PRINCIPAL_TYPE = "Unknown"


class ManagedHsmAccessControl:
    def __init__(
        self,
        resource_id: str,
        hsm_url: str,
        credential: TokenCredential,
        *,
        connection_verify: str | bool = True,
        verify_challenge_resource: bool = True,
    ) -> None:
        self._scopes = HsmScopes(resource_id)
        self._client = KeyVaultAccessControlClient(
            hsm_url,
            credential,
            connection_verify=connection_verify,
            verify_challenge_resource=verify_challenge_resource,
            retry_policy=default_retry_policy(),
        )

    def _local(self, scope: str) -> str:
        try:
            return self._scopes.local(scope)
        except ValueError as exc:
            raise InvalidInput("scope", str(exc)) from exc

    def _to_assignment(self, a: Any) -> RoleAssignment:
        props = a.properties
        local = props.scope or "/"
        return RoleAssignment(
            id=self._scopes.assignment_id(local, a.name),
            scope=self._scopes.arm(local),
            role_definition_id=props.role_definition_id,
            principal_id=props.principal_id,
            principal_type=UNKNOWN_PRINCIPAL_TYPE,
            created_on=None,
        )

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        local = self._local(scope)
        try:
            return [self._to_assignment(a) for a in self._client.list_role_assignments(local)]
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"Managed HSM role assignments at {local}", NotFound) from exc

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        local = self._local(scope)
        try:
            definition = hsm_role_definition_id(role_definition_guid(role_definition_id))
        except ValueError as exc:
            raise InvalidInput("role_definition_id", str(exc)) from exc
        try:
            made = self._client.create_role_assignment(local, definition, principal_id, name=name or uuid.uuid4())
            return self._to_assignment(made)
        except SDK_ERRORS as exc:
            error = translate_error(exc, f"Managed HSM role assignment at {local}", NotFound)
            if not isinstance(error, Conflict):
                raise error from exc
        wanted = role_definition_guid(definition)
        for a in self.list_assignments(scope):  # the same grant exists already (a retried create): it is the one
            if (
                a.scope.lower() == self._scopes.arm(local).lower()
                and a.role_guid == wanted
                and a.principal_id.lower() == principal_id.lower()
            ):
                return a
        raise error from None

    def delete_assignment(self, assignment_id: str) -> bool:
        try:
            local, name = self._scopes.split_assignment_id(assignment_id)
        except ValueError as exc:
            raise InvalidInput("assignment_id", str(exc)) from exc
        try:  # the SDK's delete swallows a 404, so ask first: the port reports whether something was deleted
            self._client.get_role_assignment(local, name)
        except SDK_ERRORS as exc:
            error = translate_error(exc, f"Managed HSM role assignment {name}", NotFound)
            if isinstance(error, NotFound):
                return False
            raise error from exc
        try:
            self._client.delete_role_assignment(local, name)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"Managed HSM role assignment {name}", NotFound) from exc
        return True

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        try:
            guid = role_definition_guid(role_definition_id)
        except ValueError as exc:
            raise InvalidInput("role_definition_id", str(exc)) from exc
        try:
            found = self._client.get_role_definition(KeyVaultRoleScope.GLOBAL, guid)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"Managed HSM role definition {guid}", NotFound) from exc
        document = {
            "id": found.id,
            "name": found.name,
            "properties": {
                "roleName": found.role_name,
                "type": found.role_type,
                "permissions": [
                    {
                        "actions": list(p.actions or []),
                        "notActions": list(p.not_actions or []),
                        "dataActions": [str(getattr(d, "value", d)) for d in p.data_actions or []],
                        "notDataActions": [str(getattr(d, "value", d)) for d in p.not_data_actions or []],
                    }
                    for p in found.permissions or []
                ],
            },
        }
        try:
            return role_definition_from_arm(document)
        except ValueError as exc:
            raise UnexpectedResponse(f"Managed HSM role definition {guid}: no usable definition ({exc})") from exc

    def close(self) -> None:
        self._client.close()


def app_access_control(settings: Any, inventory: Any, credential: TokenCredential) -> Any:
    """The app's AccessControl (shared.bootstrap): ARM's adapter, beside each Managed HSM's the inventory names."""
    from shared.azure.access import AzureAccessControl

    arm = AzureAccessControl(
        credential,
        settings.subscription_id or inventory.vaults[0].subscription_id,
        base_url=settings.arm_endpoint,
        connection_verify=settings.connection_verify,
    )
    return with_managed_hsms(
        arm,
        inventory.vaults,
        credential,
        connection_verify=settings.connection_verify,
        verify_challenge_resource=settings.verify_challenge_resource,
    )


def with_managed_hsms(
    arm: Any,
    vaults: Any,
    credential: TokenCredential,
    *,
    connection_verify: str | bool = True,
    verify_challenge_resource: bool = True,
) -> Any:
    """The app's AccessControl: ARM's adapter alone, or, when the inventory names Managed HSMs, ARM's and one local RBAC
    adapter per HSM behind RoutedAccessControl (shared.local_rbac), chosen by scope."""
    hsms = [v for v in vaults if v.managed_hsm]
    if not hsms:
        return arm
    return RoutedAccessControl(
        arm,
        {
            v.resource_id: ManagedHsmAccessControl(
                v.resource_id,
                v.url,
                credential,
                connection_verify=connection_verify,
                verify_challenge_resource=verify_challenge_resource,
            )
            for v in hsms
        },
    )
