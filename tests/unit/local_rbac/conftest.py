"""The reference deployment on a Managed HSM (inventory/reference-hsm.yaml) over fakes: ARM's assignments in one fake,
the HSM's local RBAC in another, both behind RoutedAccessControl as the app is given them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import roles
from shared.inventory import load_inventory
from shared.local_rbac import RoutedAccessControl
from tests.fakes.access import FakeAccessControl
from tests.fakes.clock import FakeClock
from tests.fakes.hsm_access import FakeManagedHsmAccessControl
from tests.fakes.keyvault import FakeKeyVault
from tests.fakes.vaults import FakeVaults
from tests.unit.conftest import World

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def hsm_world() -> World:
    inventory = load_inventory(ROOT / "inventory/reference-hsm.yaml", {})
    [hsm] = inventory.vaults
    clock = FakeClock()
    vault = FakeKeyVault(clock)
    local = FakeManagedHsmAccessControl(hsm.resource_id)
    access = RoutedAccessControl(FakeAccessControl(clock), {hsm.resource_id: local})
    vaults = FakeVaults()
    vaults.register(hsm.resource_id)
    w = World(inventory, vault, access, clock, vaults)  # type: ignore[arg-type]
    w.local_rbac = local  # type: ignore[attr-defined]
    w.consumers.clock = clock
    app = inventory.app_identity
    w.grant(f"{hsm.resource_id}/keys", app, roles.HSM_CRYPTO_USER)
    w.grant(hsm.resource_id, app, roles.HSM_POLICY_ADMINISTRATOR)
    for key in inventory.keys:
        vault.create_key(key.ref, kty=key.kty, size=key.size, ops=key.ops, expires=key.rotation.expiry_for(clock.now()))
        vault.set_rotation_policy(key.ref, key.rotation.to_policy())
        w.grant(key.scope, key.identity.principal_id, key.role)
        current = vault.get_key(key.ref)
        for consumer in key.consumers:
            if consumer.resource_id:
                w.consumers.add(
                    consumer.kind.value, consumer.resource_id, current.key_id, identities=(key.identity.principal_id,)
                )
    return w
