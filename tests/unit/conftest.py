"""The reference deployment over in-memory fakes, exactly as the inventory wants it, for handler tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from functions.compliance.report import report_keys
from shared import roles
from shared.coordination.pacing import CreationPacer
from shared.events.values import EVENT_GRID
from shared.inventory import Inventory, load_inventory
from shared.roles.catalog import RoleCatalog
from tests.fakes.access import FakeAccessControl
from tests.fakes.audit import FakeAuditTrail
from tests.fakes.claims import FakeClaims
from tests.fakes.clock import FakeClock
from tests.fakes.dekstore import FakeDekStore
from tests.fakes.keyvault import FakeKeyVault
from tests.fakes.outbound import FakeAlerts, FakeConsumers, FakeWorkQueue
from tests.fakes.revocations import FakeRevocations
from tests.fakes.shardkeys import FakeShardKeyStore
from tests.fakes.telemetry import RecordingTelemetry
from tests.fakes.vaults import FakeVaults

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    inventory: Inventory
    vault: FakeKeyVault
    access: FakeAccessControl
    clock: FakeClock
    vaults: FakeVaults
    claims: FakeClaims = field(default_factory=FakeClaims)
    audit: FakeAuditTrail = field(default_factory=FakeAuditTrail)
    alerts: FakeAlerts = field(default_factory=FakeAlerts)
    slept: list = field(default_factory=list)
    dekstore: FakeDekStore = field(default_factory=FakeDekStore)
    shardkeys: FakeShardKeyStore = field(default_factory=FakeShardKeyStore)
    consumers: FakeConsumers = field(default_factory=FakeConsumers)
    rewrap_queue: FakeWorkQueue = field(default_factory=FakeWorkQueue)
    budget: object = None
    revocations: FakeRevocations = field(default_factory=FakeRevocations)
    access_checks: FakeWorkQueue = field(default_factory=FakeWorkQueue)
    move_queue: FakeWorkQueue = field(default_factory=FakeWorkQueue)
    reconcile_queue: FakeWorkQueue = field(default_factory=FakeWorkQueue)
    telemetry: RecordingTelemetry = field(default_factory=RecordingTelemetry)

    def ports(self) -> dict:
        """What the report and the sweep are called with (the role catalog fresh, so a test sees its own roles)."""
        return {
            "inventory": self.inventory,
            "vault": self.vault,
            "access": self.access,
            "roles": RoleCatalog(self.access, self.clock),
            "vault_settings": self.vaults,
            "clock": self.clock,
        }

    def rotation_ports(self) -> dict:
        """What rotation handlers are called with."""
        return {
            "vault": self.vault,
            "claims": self.claims,
            "audit": self.audit,
            "alerts": self.alerts,
            "clock": self.clock,
        }

    def sweep_ports(self) -> dict:
        elapsed = [0.0]

        def sleep(seconds: float) -> None:  # pacing without waiting: time moves only when the pacer sleeps
            elapsed[0] += seconds
            self.slept.append(seconds)

        pacer = CreationPacer(monotonic=lambda: elapsed[0], sleep=sleep)
        return {
            **self.ports(),
            "alerts": self.alerts,
            "claims": self.claims,
            "audit": self.audit,
            "pacer": pacer,
            "dekstore": self.dekstore,
            "rewrap_queue": self.rewrap_queue,
            "move_queue": self.move_queue,
            "consumers": self.consumers,
            "revocations": self.revocations,
        }

    def access_ports(self) -> dict:
        """What access reconciliation is called with."""
        return {
            "inventory": self.inventory,
            "access": self.access,
            "roles": self.ports()["roles"],
            "vault": self.vault,
            "vault_settings": self.vaults,
            "revocations": self.revocations,
            "audit": self.audit,
            "alerts": self.alerts,
            "clock": self.clock,
            "consumers": self.consumers,
        }

    def revocation_ports(self, checks, *, follow_up_delay: int) -> dict:
        """What a revocation, a restoration and their follow-up checks are called with (`checks`: the follow-up
        queue); the check also takes `rbac_propagation`, which each test gives."""
        return {
            "inventory": self.inventory,
            "access": self.access,
            "roles": self.ports()["roles"],
            "vault": self.vault,
            "vault_settings": self.vaults,
            "consumers": self.consumers,
            "dekstore": self.dekstore,
            "revocations": self.revocations,
            "audit": self.audit,
            "alerts": self.alerts,
            "clock": self.clock,
            "revocation_checks": checks,
            "follow_up_delay": follow_up_delay,
        }

    def key_event(self, cls, name: str, version: str):
        """A Key Vault event of type `cls` about `name`'s `version`, as shared.events would have parsed it."""
        managed = self.key(name)
        return cls(
            event_id=str(uuid.uuid4()),
            event_time=self.clock.now(),
            key=managed,
            key_ref=managed.ref,
            version=version,
            vault_name=managed.vault.name,
            nbf=None,
            exp=None,
            topic=None,
            schema=EVENT_GRID,
        )

    def rewrap_ports(self) -> dict:
        """What the new-version handler is called with (it decides and enqueues, nothing more)."""
        return {
            "vault": self.vault,
            "dekstore": self.dekstore,
            "rewrap_queue": self.rewrap_queue,
            "move_queue": self.move_queue,
            "claims": self.claims,
            "audit": self.audit,
            "clock": self.clock,
        }

    def move_ports(self) -> dict:
        """What the consumer-move worker is called with (follow-ups queued with a 3 s delay, as in the local run)."""
        return {
            "inventory": self.inventory,
            "vault": self.vault,
            "consumers": self.consumers,
            "claims": self.claims,
            "audit": self.audit,
            "alerts": self.alerts,
            "clock": self.clock,
            "move_queue": self.move_queue,
            "follow_up_delay": 3,
        }

    def report(self):
        return report_keys(**self.ports(), consumers=self.consumers)

    def key(self, name: str):
        return self.inventory.key(name)

    def role_id(self, role: roles.BuiltInRole) -> str:
        return roles.role_definition_id(self.inventory.vaults[0].subscription_id, role)

    def grant(self, scope: str, principal: str, role: roles.BuiltInRole = roles.CRYPTO_SERVICE_ENCRYPTION_USER):
        return self.access.create_assignment(scope, self.role_id(role), principal, "ServicePrincipal")

    def codes(self, key: str) -> set[str]:
        return {f.code for f in self.report().findings if f.key == key}


@pytest.fixture
def world() -> World:
    """The reference deployment, exactly as the inventory wants it."""
    return build_world(load_inventory(ROOT / "inventory/reference.yaml", {}))


def build_world(inventory: Inventory) -> World:
    """A deployment of `inventory` as it wants it; an imported key's first version is imported (tagged), not made."""
    clock = FakeClock()
    vault = FakeKeyVault(clock)
    access = FakeAccessControl(clock)
    vaults = FakeVaults()
    for v in inventory.vaults:
        vaults.register(v.resource_id)
    w = World(inventory, vault, access, clock, vaults)
    w.consumers.clock = clock  # a consumer's long-running operations take the time the test gives them
    for key in inventory.keys:
        make = vault.import_key if key.imported else vault.create_key
        make(key.ref, kty=key.kty, size=key.size, ops=key.ops, expires=key.rotation.expiry_for(clock.now()))
        vault.set_rotation_policy(key.ref, key.rotation.to_policy())
        w.grant(key.scope, key.identity.principal_id, key.role)
        current = vault.get_key(key.ref)
        for consumer in key.consumers:
            if consumer.resource_id:  # the Azure consumers start on the key's first version
                w.consumers.add(
                    consumer.kind.value, consumer.resource_id, current.key_id, identities=(key.identity.principal_id,)
                )
    access.age(timedelta(days=1))  # the deployment's grants are long in effect
    return w
