"""L1: one due rotation makes one version, even when the sweep's snapshot is stale, when the vault's own policy made
the version meanwhile, or when the create's response was lost (the version exists, the caller never heard)."""

from __future__ import annotations

from datetime import timedelta

from functions.rotation.rotate import FAILED_ALERT, RotationStatus, rotate_from
from functions.sweep import run_sweep
from shared.coordination.claims import rotation_claim_id
from shared.errors import ServiceUnavailable

AKS = "aks-encryption-key"


def _versions(world, name: str = AKS) -> list:
    return world.vault.list_versions(world.key(name).ref)


class VaultRotatesWhilePacing:
    """The pacer sleeps for the HSM creation limit; meanwhile the vault's own rotation policy makes the version."""

    def __init__(self, world) -> None:
        self._world, self.fired = world, False

    def acquire(self, vault_host: str) -> float:
        if not self.fired:
            self.fired = True
            self._world.clock.advance(timedelta(seconds=2))
            self._world.vault.rotate_key(self._world.key(AKS).ref)
        return 2.0


def test_the_sweep_re_reads_the_key_after_its_claim_not_its_snapshot(world):
    """The sweep's snapshot cached V1 before `pacer.acquire` slept; the vault made V2 in between. The claim's re-read
    must see V2 (the vault's policy counts as the rotation): no V3."""
    world.inventory = world.inventory.__class__(
        **{**world.inventory.__dict__, "keys": tuple(k for k in world.inventory.keys if k.name == AKS)}
    )
    world.clock.advance(timedelta(days=91))
    outcome = run_sweep(**{**world.sweep_ports(), "pacer": VaultRotatesWhilePacing(world)})
    [rotation] = outcome.rotations
    assert rotation.status is RotationStatus.ALREADY_ROTATED
    assert len(_versions(world)) == 2


class StaleLatest:
    """A vault whose versionless read still answers the previous version (a cache, or a replica behind)."""

    def __init__(self, vault, stale) -> None:
        self._vault, self._stale = vault, stale

    def __getattr__(self, name):
        return getattr(self._vault, name)

    def get_key(self, key, version=None):
        return self._stale if version is None else self._vault.get_key(key, version)


def test_a_version_created_after_from_version_in_the_list_is_the_rotation(world):
    managed = world.key(AKS)
    old = world.vault.get_key(managed.ref)
    world.clock.advance(timedelta(seconds=1))
    made = world.vault.rotate_key(managed.ref)  # the vault's own policy
    ports = {**world.rotation_ports(), "vault": StaleLatest(world.vault, old)}
    outcome = rotate_from(managed, old.version, trigger="timer", reason="test", **ports)
    assert (outcome.status, outcome.to_version) == (RotationStatus.ALREADY_ROTATED, made.version)
    assert len(_versions(world)) == 2


class LostResponse:
    """The create/rotate reaches the vault and makes the version; its response is lost on the way back."""

    def __init__(self, vault) -> None:
        self._vault, self.lost = vault, 0

    def __getattr__(self, name):
        return getattr(self._vault, name)

    def rotate_key(self, key):
        self._vault.rotate_key(key)
        self.lost += 1
        raise ServiceUnavailable("the response was lost (read timeout)")

    def create_key(self, key, **kwargs):
        self._vault.create_key(key, **kwargs)
        self.lost += 1
        raise ServiceUnavailable("the response was lost (read timeout)")


def test_a_lost_create_response_is_settled_by_re_reading_not_by_creating_again(world):
    managed = world.key(AKS)
    old = world.vault.get_key(managed.ref).version
    world.clock.advance(timedelta(seconds=1))
    vault = LostResponse(world.vault)
    outcome = rotate_from(managed, old, trigger="timer", reason="test", **{**world.rotation_ports(), "vault": vault})
    new = world.vault.get_key(managed.ref)
    assert vault.lost == 1 and (outcome.status, outcome.to_version) == (RotationStatus.ROTATED, new.version)
    assert not [a for a in world.alerts.published if a.type == FAILED_ALERT]
    claim = world.claims.get(rotation_claim_id(managed.ref.vault_host, AKS, old))
    assert claim.outcome["to_version"] == new.version
    again = rotate_from(managed, old, trigger="event", reason="test", **world.rotation_ports())
    assert again.status is RotationStatus.ALREADY_ROTATED and len(_versions(world)) == 2


def test_the_sweeps_snapshot_never_caches_the_version_list(world):
    """What rotate_from relies on: in the sweep, the list is read now even when the latest version was cached."""
    from shared.keyvault_snapshot import SnapshotKeyVault

    ref = world.key(AKS).ref
    snapshot = SnapshotKeyVault(world.vault)
    cached = snapshot.get_key(ref)
    world.clock.advance(timedelta(seconds=1))
    made = world.vault.rotate_key(ref)  # behind the snapshot's back, as the vault's own policy does
    assert snapshot.get_key(ref) == cached
    assert {v.version for v in snapshot.list_versions(ref)} == {cached.version, made.version}
