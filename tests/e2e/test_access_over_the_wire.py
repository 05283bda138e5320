"""Least privilege through the whole local system: a grant made in the emulated ARM raises its event, Event Grid
delivers it to role_assignment_events, the app lists the assignments through the unchanged SDK and (in enforce mode)
removes the grant; Key Vault then answers each identity as RBAC now says, and the alerts and audit records are there.
Each test gets a fresh system (audit mode is an app setting, and the tests change who can use the keys)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from shared import roles
from shared.errors import Forbidden
from tests.e2e.conftest import Wire, audit_records, fresh_system, let_rbac_propagate, topic_events, wait_until

pytestmark = pytest.mark.e2e

AKS = "aks-encryption-key"
STRANGER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


@pytest.fixture
def enforcing(tmp_path) -> Iterator[LocalSystem]:
    with fresh_system(tmp_path) as local:  # the reference inventory's default mode: enforce
        yield local


@pytest.fixture
def auditing(tmp_path) -> Iterator[LocalSystem]:
    with fresh_system(tmp_path, CMK_MODE="audit") as local:
        yield local


def _listed(system: LocalSystem, scope: str) -> set[str]:
    access = system.cloud.access()
    try:
        return {a.id.lower() for a in access.list_assignments(scope)}
    finally:
        access.close()


def test_enforce_removes_the_mysql_identity_from_the_aks_key_and_the_aks_identity_keeps_unwrapping(enforcing):
    system, wire = enforcing, Wire(enforcing)
    ids, key = system.cloud.identities, system.cloud.inventory().key(AKS)
    drift = system.cloud.assign(key.scope, roles.CRYPTO_USER, ids.mysql).lower()
    assert drift in _listed(system, key.scope)

    wait_until(lambda: drift not in _listed(system, key.scope), what="the handler to remove the drifted grant")
    let_rbac_propagate(system)  # the grant and its removal both reach Key Vault, in whatever order they land

    aks, mysql = system.cloud.keyvault(ids.aks), system.cloud.keyvault(ids.mysql)
    try:
        current = aks.get_key(key.ref)
        dek = os.urandom(32)
        wrapped = aks.wrap_key(key.ref, current.version, dek)  # locally, from the public key
        assert aks.unwrap_key(wrapped.key_id, wrapped.wrapped) == dek  # remotely: Key Vault checks RBAC
        with pytest.raises(Forbidden):
            mysql.unwrap_key(wrapped.key_id, wrapped.wrapped)
    finally:
        aks.close()
        mysql.close()

    [violation] = wait_until(
        lambda: topic_events(system, "CmkGuardian.Access.Violation", AKS), what="the Violation alert"
    )
    assert violation["data"]["trigger"].startswith("event:") and violation["data"]["message"].endswith("remediated")
    [step] = violation["data"]["steps"]
    assert step.startswith("RemoveAssignment") and ids.mysql.lower() in step and "cross rule" in step
    assert f"mysql ({ids.mysql.lower()})" in step  # named with its role in the inventory, not by GUID alone
    [remediated] = wait_until(lambda: topic_events(system, "CmkGuardian.Access.Remediated", AKS), what="Remediated")
    assert [s.lower() for s in remediated["data"]["executed"]] == [f"removeassignment {drift}"]
    removed = [r for r in audit_records(wire, AKS) if r["action"] == "access-remove" and r["outcome"] == "removed"]
    assert len(removed) == 1 and removed[0]["detail"]["assignment"].lower() == drift
    assert removed[0]["detail"]["principal"] == ids.mysql.lower()


def test_audit_mode_reports_a_strangers_vault_wide_crypto_user_and_leaves_it(auditing):
    system, wire = auditing, Wire(auditing)
    vault_scope = system.cloud.vault_resource_id
    drift = system.cloud.assign(vault_scope, roles.CRYPTO_USER, STRANGER).lower()

    [violation] = wait_until(
        lambda: topic_events(system, "CmkGuardian.Access.Violation", AKS), what="the Violation alert"
    )
    assert violation["data"]["message"].endswith("reported only")
    assert any(STRANGER in step and "inherited from" in step for step in violation["data"]["steps"])
    reported = wait_until(
        lambda: [r for r in audit_records(wire, AKS) if r["action"] == "access-report" and r["outcome"] == "reported"],
        what="the access-report audit record",
    )
    assert any(STRANGER in step for step in reported[0]["detail"]["steps"])
    assert not topic_events(system, "CmkGuardian.Access.Remediated", AKS)
    assert not [r for r in audit_records(wire, AKS) if r["action"] == "access-remove"]
    assert drift in _listed(system, vault_scope)  # reported, not removed
