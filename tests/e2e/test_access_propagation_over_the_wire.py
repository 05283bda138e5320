"""No lockout while Key Vault applies RBAC changes, through the whole local system (review H3): the MySQL identity
holds Key Vault Crypto Officer at its key and nothing else. The reconcile grants the minimal role at once, but the
Crypto Officer grant goes only once the minimal one has existed for CMK_RBAC_PROPAGATION_SECONDS on the app's clock
(the emulated one), through the re-queuing follow-up, never in the same pass.

Drafted against today's emulators (which apply RBAC at once); with emulated propagation on, the same steps also
show the server available at every emulated minute (the emulators' consumer history)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from localrun.system import LocalSystem
from shared import roles
from tests.e2e.conftest import fresh_system, wait_until

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
    minimal = roles.CRYPTO_SERVICE_ENCRYPTION_USER.guid.lower()
    officer = cloud.assign(key.scope, roles.CRYPTO_OFFICER, mysql).lower()
    for assignment_id, role in _grants(system, key.scope, mysql).items():
        if role == minimal:
            cloud.revoke(assignment_id)  # Crypto Officer is now the server's only access

    regranted = wait_until(
        lambda: [a for a, role in _grants(system, key.scope, mysql).items() if role == minimal],
        what="the reconcile to grant the minimal role",
    )
    time.sleep(8)  # the same pass, and a few re-queued follow-ups (3 s apart), have run by now
    held = _grants(system, key.scope, mysql)
    assert officer in held and regranted[0] in held  # deferred: the minimal grant may not be in effect yet

    cloud.admin("POST", "/clock", {"advance": 601})  # the app's clock passes the minimal grant's propagation time
    wait_until(lambda: officer not in _grants(system, key.scope, mysql), what="the follow-up to remove Crypto Officer")
    assert set(_grants(system, key.scope, mysql).values()) == {minimal}
    history = cloud.admin("GET", "/consumers")["consumers"]
    server = next(c.resource_id for c in key.consumers if c.resource_id)
    record = next(v for k, v in history.items() if k.lower() == server.lower())
    assert record["unavailable_checks"] == 0 and record["available_checks"] > 0, record
