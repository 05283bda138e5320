"""No lockout while Key Vault applies RBAC changes, through the whole local system (review H3): the MySQL identity
holds Key Vault Crypto Officer at its key and nothing else. The reconcile grants the minimal role at once, but the
Crypto Officer grant goes only once the minimal one has existed for CMK_RBAC_PROPAGATION_SECONDS on the app's clock
(the emulated one), through the re-queuing follow-up, never in the same pass.

The local cloud applies each role change after its own delay of up to 10 emulated minutes, and the consumers check
their keys at every emulated minute while a change is pending: the server is available at every one of them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from shared import roles
from tests.e2e.conftest import fresh_system, let_rbac_propagate, wait_until

pytestmark = pytest.mark.e2e

MYSQL = "mysql-encryption-key"


@pytest.fixture
def propagating(tmp_path) -> Iterator[LocalSystem]:
    with fresh_system(tmp_path, CMK_RBAC_PROPAGATION_SECONDS="600", CMK_FOLLOW_UP_SECONDS="3") as local:
        yield local


def _grants(system: LocalSystem, scope: str, principal: str) -> dict[str, str]:
    """assignment id -> role GUID, of `principal` at exactly `scope`."""
    access = system.cloud.access()
    try:
        listed = access.list_assignments(scope)
    finally:
        access.close()
    return {
        a.id.lower(): a.role_guid
        for a in listed
        if a.principal_id.lower() == principal.lower() and a.scope.lower() == scope.lower()
    }


def test_a_broad_grant_goes_only_after_the_minimal_one_has_been_in_place_for_the_propagation_time(propagating):
    system = propagating
    cloud = system.cloud
    key = cloud.inventory().key(MYSQL)
    mysql = cloud.identities.mysql
    server = next(c.resource_id for c in key.consumers if c.resource_id)
    minimal = roles.CRYPTO_SERVICE_ENCRYPTION_USER.guid.lower()
    officer = cloud.assign(key.scope, roles.CRYPTO_OFFICER, mysql).lower()
    let_rbac_propagate(system)  # Crypto Officer is in effect in Key Vault
    for assignment_id, role in _grants(system, key.scope, mysql).items():
        if role == minimal:
            cloud.revoke(assignment_id)  # Crypto Officer is now the server's only access
    before = _unavailable(system, server)

    regranted = wait_until(
        lambda: [a for a, role in _grants(system, key.scope, mysql).items() if role == minimal],
        what="the reconcile to grant the minimal role",
    )
    time.sleep(8)  # the same pass, and a few re-queued follow-ups (3 s apart), have run by now
    held = _grants(system, key.scope, mysql)
    assert officer in held and regranted[0] in held  # deferred: the minimal grant may not be in effect yet

    # The app's clock passes the minimal grant's propagation time (the consumers check at every emulated minute on
    # the way); the follow-up then removes Crypto Officer, and that removal's own window is walked minute by minute.
    cloud.admin("POST", "/clock", {"advance": 601})
    wait_until(lambda: officer not in _grants(system, key.scope, mysql), what="the follow-up to remove Crypto Officer")
    windows_before = cloud.admin("GET", "/rbac/propagation")["windows"]
    let_rbac_propagate(system)
    propagation = cloud.admin("GET", "/rbac/propagation")
    assert propagation["windows"] > windows_before and propagation["minute_checks"] > 0
    assert set(_grants(system, key.scope, mysql).values()) == {minimal}
    assert _unavailable(system, server) == before, "the server could not use its key in some emulated minute"
    history = cloud.admin("GET", "/consumers")["consumers"]
    record = next(v for k, v in history.items() if k.lower() == server.lower())
    assert record["unavailable_checks"] == 0 and record["available_checks"] > 0, record


def _unavailable(system: LocalSystem, server: str) -> int:
    """The emulated minutes, inside RBAC propagation windows, in which the server could not use its key."""
    found = system.cloud.admin("GET", "/rbac/propagation")["unavailable"]
    return sum(n for rid, n in found.items() if rid.lower() == server.lower())
