"""Least privilege through the whole local system: a grant made in the emulated ARM raises its event, Event Grid
delivers it to role_assignment_events, the app lists the assignments through the unchanged SDK and (in enforce mode)
removes the grant; Key Vault then answers each identity as RBAC now says, and the alerts and audit records are there.
Each test gets a fresh system (audit mode is an app setting, and the tests change who can use the keys)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem, Ports
from shared import roles
from shared.errors import Forbidden
from tests.e2e.conftest import FAST_QUEUES, Wire, write_host_json

pytestmark = pytest.mark.e2e

AKS = "aks-encryption-key"
NEVER = "0 0 0 1 1 *"  # the sweep runs only when a test runs it
STRANGER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def _system(tmp_path, **settings: str) -> LocalSystem:
    return LocalSystem(
        tmp_path / "run",
        ports=Ports.free(),
        extra_settings={"CMK_SWEEP_SCHEDULE": NEVER, **settings},
        host_json=write_host_json(tmp_path / "host.json", FAST_QUEUES),
    )


@pytest.fixture
def enforcing(tmp_path) -> Iterator[LocalSystem]:
    with _system(tmp_path) as local:  # the reference inventory's default mode: enforce
        yield local


@pytest.fixture
def auditing(tmp_path) -> Iterator[LocalSystem]:
    with _system(tmp_path, CMK_MODE="audit") as local:
        yield local


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _listed(system: LocalSystem, scope: str) -> set[str]:
    access = system.cloud.access()
    try:
        return {a.id.lower() for a in access.list_assignments(scope)}
    finally:
        access.close()


def _topic_events(system: LocalSystem, event_type: str, key: str) -> list[dict]:
    events = system.cloud.admin("GET", "/eventgrid/topic-events")["value"]
    return [e for e in events if e.get("type") == event_type and (e.get("data") or {}).get("key") == key]


def _audit(wire: Wire, key: str) -> list[dict]:
    response = wire.get(f"/api/audit?key={key}")
    assert response.status_code == 200, response.text
    return response.json()["records"]


def test_enforce_removes_the_mysql_identity_from_the_aks_key_and_the_aks_identity_keeps_unwrapping(enforcing):
    system, wire = enforcing, Wire(enforcing)
    ids, key = system.cloud.identities, system.cloud.inventory().key(AKS)
    drift = system.cloud.assign(key.scope, roles.CRYPTO_USER, ids.mysql).lower()
    assert drift in _listed(system, key.scope)

    _wait(lambda: drift not in _listed(system, key.scope), what="the handler to remove the drifted grant")

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

    [violation] = _wait(lambda: _topic_events(system, "CmkGuardian.Access.Violation", AKS), what="the Violation alert")
    assert violation["data"]["trigger"].startswith("event:") and violation["data"]["message"].endswith("remediated")
    [step] = violation["data"]["steps"]
    assert step.startswith("RemoveAssignment") and ids.mysql.lower() in step and "cross rule" in step
    [remediated] = _wait(lambda: _topic_events(system, "CmkGuardian.Access.Remediated", AKS), what="Remediated")
    assert [s.lower() for s in remediated["data"]["executed"]] == [f"removeassignment {drift}"]
    removed = [r for r in _audit(wire, AKS) if r["action"] == "access-remove" and r["outcome"] == "removed"]
    assert len(removed) == 1 and removed[0]["detail"]["assignment"].lower() == drift
    assert removed[0]["detail"]["principal"] == ids.mysql.lower()


def test_audit_mode_reports_a_strangers_vault_wide_crypto_user_and_leaves_it(auditing):
    system, wire = auditing, Wire(auditing)
    vault_scope = system.cloud.vault_resource_id
    drift = system.cloud.assign(vault_scope, roles.CRYPTO_USER, STRANGER).lower()

    [violation] = _wait(lambda: _topic_events(system, "CmkGuardian.Access.Violation", AKS), what="the Violation alert")
    assert violation["data"]["message"].endswith("reported only")
    assert any(STRANGER in step and "inherited from" in step for step in violation["data"]["steps"])
    reported = _wait(
        lambda: [r for r in _audit(wire, AKS) if r["action"] == "access-report" and r["outcome"] == "reported"],
        what="the access-report audit record",
    )
    assert any(STRANGER in step for step in reported[0]["detail"]["steps"])
    assert not _topic_events(system, "CmkGuardian.Access.Remediated", AKS)
    assert not [r for r in _audit(wire, AKS) if r["action"] == "access-remove"]
    assert drift in _listed(system, vault_scope)  # reported, not removed
