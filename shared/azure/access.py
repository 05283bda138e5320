"""The AccessControl port over azure-mgmt-authorization (role assignments and definitions, api 2022-04-01)."""

from __future__ import annotations

import uuid
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from shared.arm_ids import is_guid, normalize_scope, role_definition_guid, subscription_role_definition_id
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.retry import default_retry_policy
from shared.errors import Conflict, NotFound, UnexpectedResponse
from shared.model import RoleAssignment
from shared.roles.definitions import RoleDefinition, role_definition_from_arm


def _to_assignment(a: Any) -> RoleAssignment:
    return RoleAssignment(
        id=a.id,
        scope=a.scope,
        role_definition_id=a.role_definition_id,
        principal_id=a.principal_id,
        principal_type=str(getattr(a.principal_type, "value", a.principal_type) or "ServicePrincipal"),
        created_on=getattr(a, "created_on", None),
    )


class AzureAccessControl:
    def __init__(
        self,
        credential: TokenCredential,
        subscription_id: str,
        *,
        base_url: str = "https://management.azure.com",
        connection_verify: str | bool = True,
    ) -> None:
        self._subscription_id = subscription_id
        self._client = AuthorizationManagementClient(
            credential,
            subscription_id,
            base_url=base_url,
            connection_verify=connection_verify,
            retry_policy=default_retry_policy(),
        )

    def list_assignments(self, scope: str) -> list[RoleAssignment]:
        try:
            return [_to_assignment(a) for a in self._client.role_assignments.list_for_scope(scope, filter="atScope()")]
        except ResourceNotFoundError as exc:
            raise NotFound(f"scope {scope}: not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"role assignments at {scope}", NotFound) from exc

    def create_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str, name: str | None = None
    ) -> RoleAssignment:
        params = RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id, principal_id=principal_id, principal_type=principal_type
        )
        try:
            created = self._client.role_assignments.create(scope, name or str(uuid.uuid4()), params)
            return _to_assignment(created)
        except (ResourceExistsError, HttpResponseError) as exc:
            if isinstance(exc, ResourceExistsError) or exc.status_code == 409:
                wanted_role = role_definition_guid(role_definition_id)
                for a in self.list_assignments(scope):
                    if (
                        a.role_guid == wanted_role
                        and a.principal_id.lower() == principal_id.lower()
                        and normalize_scope(a.scope) == normalize_scope(scope)
                    ):
                        return a
                raise Conflict(f"role assignment at {scope}: {exc.message}") from exc
            raise translate_error(exc, f"role assignment at {scope}", NotFound) from exc

    def delete_assignment(self, assignment_id: str) -> bool:
        try:
            deleted = self._client.role_assignments.delete_by_id(assignment_id)
        except ResourceNotFoundError:
            return False
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"role assignment {assignment_id}", NotFound) from exc
        return deleted is not None

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        role_id = role_definition_id.strip()
        if is_guid(role_id):
            role_id = subscription_role_definition_id(self._subscription_id, role_id.lower())
        try:
            found = self._client.role_definitions.get_by_id(role_id)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"role definition {role_id}", NotFound) from exc
        try:
            return role_definition_from_arm(found.serialize(keep_readonly=True))
        except ValueError as exc:
            raise UnexpectedResponse(f"role definition {role_id}: ARM returned no usable definition ({exc})") from exc

    def close(self) -> None:
        self._client.close()
