"""One emulator process per test session (start-up is part of what is tested), reset before every test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.emulators import Emulators, start_emulators

CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"

OPERATOR = "5a0c3d38-93c6-4b8e-9a43-0f1f6a7d2b10"  # the principal that sets things up (Key Vault Administrator)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    running = start_emulators(tmp_path_factory.mktemp("emulators"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emu(emulators: Emulators) -> Emulators:
    """The session's emulators, reset to empty (keys, assignments, faults, counters, clock)."""
    assert emulators.alive(), emulators.stderr()
    emulators.reset()
    return emulators


Grant = Callable[[str, str, str], str]


@pytest.fixture
def grant(emu: Emulators) -> Iterator[Grant]:
    """grant(principal_id, role_guid, scope) -> assignment name, made through AuthorizationManagementClient."""
    client = emu.authorization_client(OPERATOR)

    def _grant(principal_id: str, role_guid: str, scope: str) -> str:
        name = str(uuid.uuid4())
        client.role_assignments.create(
            scope,
            name,
            {
                "properties": {
                    "roleDefinitionId": (
                        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
                        f"{role_guid}"
                    ),
                    "principalId": principal_id,
                    "principalType": "ServicePrincipal",
                }
            },
        )
        return name

    yield _grant
    client.close()


@pytest.fixture
def admin_client(emu: Emulators, grant: Grant):
    """A KeyClient for OPERATOR, who holds Key Vault Administrator on the vault."""
    grant(OPERATOR, ADMINISTRATOR, emu.vault_resource_id())
    client = emu.key_client(OPERATOR)
    yield client
    client.close()
