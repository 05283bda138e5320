"""The AccessControl port over azure-mgmt-authorization (role assignments, api 2022-04-01)."""

from __future__ import annotations

import uuid
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.keyvault import default_retry_policy
from shared.errors import Conflict, NotFound
from shared.model import RoleAssignment


def _to_assignment(a: Any) -> RoleAssignment:
    return RoleAssignment(
        id=a.id,
        scope=a.scope,
        role_definition_id=a.role_definition_id,
        principal_id=a.principal_id,
        principal_type=str(getattr(a.principal_type, "value", a.principal_type) or "ServicePrincipal"),
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
                for a in self.list_assignments(scope):
                    same_role = a.role_guid == role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
                    if (
                        same_role
                        and a.principal_id.lower() == principal_id.lower()
                        and a.scope.lower() == scope.lower()
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

    def close(self) -> None:
        self._client.close()
