"""The Managed HSMs of an emulator host (emulators.server): their stores, local RBAC and services, their ARM
resources, and the admin route that plays Azure's provisioning step (`initialAdminObjectIds`).

A new Managed HSM grants nothing to anyone until its initial administrators (named when it is provisioned) assign
roles; the admin route `POST /admin/managed-hsms/{name}/initial-admins` {"principal_ids": [...]} gives each the
Managed HSM Administrator role at `/`, at once (provisioning, not a role assignment change that propagates).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from emulators.arm_ids import is_guid
from emulators.config import hsm_resource_id
from emulators.core import azure_error
from emulators.managed_hsm import HsmStore, ManagedHsmService, NoEvents, hsm_document
from emulators.managed_hsm_rbac import LocalAssignment, LocalRbac

ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"


def start_hsms(host: Any, url_host: str, ports: list[int]) -> dict[str, dict[str, str]]:
    """One store, local RBAC and service per configured Managed HSM, added to the host's stores and services (so
    the lifecycle, the consumers and the admin API see them like vaults); they publish no events."""
    config = host.config
    info: dict[str, dict[str, str]] = {}
    for hsm, port in zip(config.managed_hsms, ports, strict=True):
        url = f"https://{url_host}:{port}"
        resource_id = hsm_resource_id(config, hsm)
        store = HsmStore(
            name=hsm.name,
            url=url,
            resource_id=resource_id,
            clock=host.clock,
            events=NoEvents(),
            on_change=host.state.mark_dirty,
        )
        rbac = LocalRbac(
            max_seconds=config.rbac_propagation_max_seconds, seed=config.rbac_propagation_seed, follow=host.arm.rbac
        )
        host.stores[hsm.name] = store
        host.hsm_rbac[hsm.name] = rbac
        host.services[hsm.name] = ManagedHsmService(
            store, rbac=rbac, authorizer=host.arm, tenant_id=config.tenant_id, faults=host.faults
        )
        info[hsm.name] = {"url": url, "resource_id": resource_id}
    return info


def register_hsms(host: Any) -> None:
    """Each HSM as an ARM resource (`Microsoft.KeyVault/managedHSMs`): purge protection and soft delete live there."""
    for hsm in host.config.managed_hsms:
        url = host.stores[hsm.name].url + "/"
        host.arm.register_resource(
            hsm_document(
                hsm_resource_id(host.config, hsm),
                hsm.name,
                location=hsm.location,
                hsm_uri=url,
                tenant_id=host.config.tenant_id,
                retention_days=hsm.soft_delete_retention_days,
                purge_protection=hsm.purge_protection,
            ),
            refresh={"hsmUri": url},
        )


def grant_initial_admins(rbac: LocalRbac, principal_ids: list[str]) -> list[LocalAssignment]:
    made = []
    for principal in principal_ids:
        assignment = LocalAssignment(str(uuid.uuid4()), "/", ADMINISTRATOR, principal.lower())
        rbac.provision(assignment)  # provisioning: effective at once, no propagation
        made.append(assignment)
    return made


def hsm_admin_routes(host: Any) -> list[web.RouteDef]:
    routes = web.RouteTableDef()

    @routes.post("/admin/managed-hsms/{name}/initial-admins")
    async def initial_admins(request: web.Request) -> web.Response:
        rbac = host.hsm_rbac.get(request.match_info["name"])
        if rbac is None:
            return azure_error(404, "NotFound", f"No Managed HSM {request.match_info['name']!r}.")
        try:
            body = await request.json()
        except ValueError:
            return azure_error(400, "InvalidRequest", "body: not valid JSON")
        ids = body.get("principal_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(is_guid(p) for p in ids):
            return azure_error(400, "InvalidRequest", 'body: expected {"principal_ids": [GUID, ...]}')
        made = grant_initial_admins(rbac, ids)
        host.state.mark_dirty()
        return web.json_response({"value": [a.to_json() for a in made]})

    return list(routes)
