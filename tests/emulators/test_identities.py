"""Identities as Azure has them: every managed identity is its own principal, and a MySQL flexible server reaches
its customer-managed key through a user-assigned identity only."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.test_arm import RG, ArmUnderTest, running_arm
from tests.emulators.test_arm_resources import IDENTITY, MYSQL, Arm, key_url, mysql_body, new_version
from tests.support.emulators import Emulators

pytestmark = pytest.mark.emulator

UAMI_API = "2023-01-31"


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmUnderTest]:
    with running_arm(tmp_path) as running:
        yield running


def _uami(raw: Arm, name: str, principal: str) -> tuple[int, dict]:
    body = {"location": "westeurope", "properties": {"principalId": principal, "tenantId": str(uuid.uuid4())}}
    return raw.call("PUT", f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}", body, UAMI_API)


def test_two_identities_never_share_a_principal(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    principal = str(uuid.uuid4())
    assert _uami(raw, "id-one", principal)[0] == 201
    assert _uami(raw, "id-one", principal)[0] == 200  # the same identity written again is no clash

    status, error = _uami(raw, "id-two", principal)
    assert status == 409 and error["error"]["code"] == "PrincipalIdAlreadyInUse"
    assert "properties.principalId" in error["error"]["message"] and "id-one" in error["error"]["message"]

    # A system-assigned identity may not take a user-assigned identity's principal either (the old local seed did).
    body = mysql_body(new_version())
    body["identity"] = {"type": "SystemAssigned,UserAssigned", "principalId": principal, "userAssignedIdentities": {}}
    body["identity"]["userAssignedIdentities"][IDENTITY] = {}
    status, error = raw.call("PUT", MYSQL, body)
    assert status == 409 and "identity.principalId" in error["error"]["message"]
    assert raw.call("GET", MYSQL)[0] == 404


def test_a_mysql_server_without_its_user_assigned_identity_is_refused(arm: ArmUnderTest) -> None:
    raw = Arm(arm)
    version = new_version()

    system_only = mysql_body(version)
    system_only["identity"] = {"type": "SystemAssigned"}
    status, error = raw.call("PUT", MYSQL, system_only)
    assert status == 400 and error["error"]["code"] == "InvalidParameter"
    assert "properties.dataEncryption.primaryUserAssignedIdentityId" in error["error"]["message"]
    assert "user-assigned identity" in error["error"]["message"]

    no_identity = mysql_body(version)
    del no_identity["identity"]
    assert raw.call("PUT", MYSQL, no_identity)[0] == 400

    not_an_identity = mysql_body(version)
    not_an_identity["properties"]["dataEncryption"]["primaryUserAssignedIdentityId"] = MYSQL
    status, error = raw.call("PUT", MYSQL, not_an_identity)
    assert status == 400 and "primaryUserAssignedIdentityId" in error["error"]["message"]

    other = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-geo"
    geo = mysql_body(version)
    geo["properties"]["dataEncryption"].update(
        geoBackupKeyURI=key_url(new_version()), geoBackupUserAssignedIdentityId=other
    )
    status, error = raw.call("PUT", MYSQL, geo)
    assert status == 400 and "geoBackupUserAssignedIdentityId" in error["error"]["message"]
    geo_listed = copy.deepcopy(geo)
    geo_listed["identity"]["userAssignedIdentities"][other] = {}
    assert raw.call("PUT", MYSQL, geo_listed)[0] == 201


def test_the_identity_endpoint_refuses_one_principal_for_two_identities(emu: Emulators) -> None:
    app, other_app, user = (str(uuid.uuid4()) for _ in range(3))
    emu.register_identity(app, user_assigned=[{"principal_id": user}])
    emu.register_identity(app, user_assigned=[{"principal_id": user}])  # the same app again
    status, error = emu.admin(
        "POST", "identities", {"principal_id": other_app, "user_assigned": [{"principal_id": user}]}
    )
    assert status == 400 and "user_assigned[0].principal_id" in error["error"]["message"]
    status, error = emu.admin(
        "POST", "identities", {"principal_id": other_app, "user_assigned": [{"principal_id": other_app}]}
    )
    assert status == 400 and "user_assigned[0].principal_id" in error["error"]["message"]
