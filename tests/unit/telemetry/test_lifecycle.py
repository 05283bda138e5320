"""Telemetry over fakes, through the app's own binding (the Container fills `telemetry` by name): a rotation, its
re-wrap and consumer move, a sweep and a revocation send the contract's events with the contract's dimensions, and
no key material (DEK plaintexts, wrapped bytes, key check values, in any encoding) is in any event or metric."""

from __future__ import annotations

import base64
import contextlib
import os
from datetime import timedelta

from functions.consumers import move_consumer
from functions.revocation import revoke
from functions.rewrap import on_new_version, rewrap_page
from functions.rotation import rotate_now
from functions.sweep import run_sweep
from shared.coordination.budget import BudgetGrant
from shared.envelope.deks import key_check_value
from shared.envelope.sharding import shard_of
from shared.events import KeyNewVersionCreated
from shared.http.commands import RevokeCommand, RotateCommand
from shared.model import WrappedDek
from shared.telemetry import names
from tests.unit.fake_ports import FakePorts

MYSQL, AKS = "mysql-encryption-key", "aks-encryption-key"


class Ports(FakePorts):
    @property
    def revocation_checks(self):
        return self._port("revocation_checks", self.world.access_checks)


class UnlimitedBudget:
    def reserve(self, scope, want, *, now, limit_per_window, window):
        return BudgetGrant(want)


def _seed(world, name: str, count: int) -> list[bytes]:
    managed = world.key(name)
    current = world.vault.get_key(managed.ref)
    secrets = []
    for i in range(count):
        dek = os.urandom(32)
        wrapped = world.vault.wrap_key(managed.ref, current.version, dek)
        dek_id = f"dek-{i:05d}"
        kcv = key_check_value(dek)
        world.dekstore.add(
            WrappedDek(shard_of(dek_id, "mysql-"), dek_id, wrapped.key_id, wrapped.algorithm, wrapped.wrapped, kcv)
        )
        secrets += [dek, wrapped.wrapped, kcv.encode()]
    return secrets


def _encodings(secret: bytes) -> list[str]:
    """How a secret could appear in a string: hex (either case), base64, base64url, its text."""
    forms = [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
    ]
    forms.append(base64.urlsafe_b64encode(secret).decode().rstrip("="))
    with contextlib.suppress(UnicodeDecodeError):
        forms.append(secret.decode("ascii"))
    return [f[:24] for f in forms if len(f) >= 16]  # any 24-character run of it is as good as the whole


def _run(world) -> tuple[FakePorts, list[bytes]]:
    world.budget = UnlimitedBudget()
    secrets = _seed(world, MYSQL, 40)
    ports = Ports(world)
    old = world.vault.get_key(world.key(MYSQL).ref)
    world.clock.advance(timedelta(seconds=1))
    rotated = ports.call(rotate_now, RotateCommand(MYSQL, "quarterly", "alice"))
    assert rotated.status.value == "rotated" and rotated.from_version == old.version
    ports.call(on_new_version, world.key_event(KeyNewVersionCreated, MYSQL, rotated.to_version))
    for _ in range(200):
        batch = world.rewrap_queue.drain()
        moves = world.move_queue.messages
        world.move_queue.messages = []
        if not batch and not moves:
            break
        for message in batch:
            ports.call(rewrap_page, message)
        for item in moves:
            world.clock.advance(timedelta(seconds=item.delay_seconds))
            ports.call(move_consumer, item.message)
    for partition in world.dekstore.partitions():  # the re-wrapped copies are key material too
        page = world.dekstore.list_page(partition, None, 1000)
        secrets += [d.wrapped for d in page.items] + [d.previous_wrapped for d in page.items if d.previous_wrapped]
    ports.call(run_sweep)
    ports.call(revoke, RevokeCommand(AKS, "revoke-access", "leaver", "alice", service="aks", dry_run=False))
    return ports, secrets


def test_a_rotation_re_wrap_move_sweep_and_revocation_send_the_contract_events(world):
    _run(world)
    sent = world.telemetry
    rotated = sent.events(names.KEY_ROTATED)
    assert [e.dimensions["outcome"] for e in rotated] == ["rotated"]
    assert rotated[0].dimensions["key"] == MYSQL and rotated[0].dimensions["trigger"] == "operator"
    assert rotated[0].dimensions["version"] != rotated[0].dimensions["previous_version"] != ""
    [started] = sent.events(names.REWRAP_STARTED)
    assert started.dimensions == {"key": MYSQL, "version": rotated[0].dimensions["version"], "shards": "16",
                                  "outcome": "started"}  # fmt: skip
    [completed] = sent.events(names.REWRAP_COMPLETED)
    assert completed.dimensions["processed"] == "40" and completed.dimensions["failed"] == "0"
    [moved] = sent.events(names.CONSUMER_MOVED)
    assert moved.dimensions["outcome"] == "moved" and moved.dimensions["consumer"] == "mysql-flexible-server/mysql-dcc"
    [sweep] = sent.events(names.SWEEP_COMPLETED)
    assert sweep.dimensions["keys"] == "2"
    [revoked] = sent.events(names.REVOCATION_EXECUTED)
    assert revoked.dimensions == {"key": AKS, "consumer": "aks", "outcome": "executed"}
    assert sum(m.value for m in sent.metrics(names.REWRAP_DEKS) if m.dimensions["outcome"] == "moved") == 40
    deks = {m.dimensions["version"]: m.value for m in sent.metrics(names.DEKS) if m.dimensions["key"] == MYSQL}
    assert deks == {rotated[0].dimensions["version"]: 40}
    severities = {m.dimensions["severity"] for m in sent.metrics(names.FINDINGS)}
    assert severities == {"critical", "high", "medium", "low"}
    for s in sent.sent:  # every value a string, as customDimensions hold them
        assert all(isinstance(v, str) for v in s.dimensions.values())


def test_no_key_material_is_in_any_event_or_metric(world):
    _, secrets = _run(world)
    assert len(secrets) > 120
    texts = [v for s in world.telemetry.sent for v in (s.name, *s.dimensions.keys(), *s.dimensions.values())]
    assert texts
    for secret in secrets:
        for form in _encodings(secret):
            leaked = [t for t in texts if form in t]
            assert leaked == [], f"key material in telemetry: {leaked[:3]}"


def test_handlers_called_without_a_recorder_send_nothing_and_still_work(world):
    """The port defaults to NO_TELEMETRY: a tool or test that passes no recorder is not broken by telemetry."""
    old = world.vault.get_key(world.key(MYSQL).ref)
    world.clock.advance(timedelta(seconds=1))
    outcome = rotate_now(
        RotateCommand(MYSQL, "quarterly", "alice"), inventory=world.inventory, **world.rotation_ports()
    )
    assert outcome.from_version == old.version and world.telemetry.sent == []
