"""The local run on an emulated Managed HSM (`scripts/run --hsm`): the emulators' configuration, and the roles the
HSM's local RBAC must hold before the reference deployment can be seeded.

As in Azure: the HSM is provisioned with an initial administrator (the operator, its security officer), who holds
Managed HSM Administrator at `/` for good (the inventory names it break-glass). That role manages roles but no keys,
so the operator gives itself Crypto User at `/` while seeding and drops it after. The app holds Crypto User at
`/keys` (rotate, policies, wrap and unwrap for DEKs) and Policy Administrator at `/` (reconcile and revoke).
"""

from __future__ import annotations

from typing import Any

from shared import roles

HSM_NAME = "hsm-cmk-reference"


def emulator_config(resource_group: str = "rg-cmk-reference") -> dict[str, Any]:
    return {"managed_hsms": [{"name": HSM_NAME, "resource_group": resource_group}]}


def grant_hsm_roles(cloud: Any) -> str:
    """The operator's seeding grant (the caller removes it when seeding is done) and the app's standing roles."""
    ids = cloud.identities
    cloud.admin("POST", f"/managed-hsms/{cloud.vault_name}/initial-admins", {"principal_ids": [ids.operator]})
    operator_grant = cloud.assign(cloud.vault_resource_id, roles.HSM_CRYPTO_USER, ids.operator, "User")
    cloud.assign(f"{cloud.vault_resource_id}/keys", roles.HSM_CRYPTO_USER, ids.app)
    cloud.assign(cloud.vault_resource_id, roles.HSM_POLICY_ADMINISTRATOR, ids.app)
    return operator_grant
