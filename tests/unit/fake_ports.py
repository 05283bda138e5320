"""The app's real Container with every port replaced by a fake, recording which ports a call actually read.

Binding and calling go through the Container's own code (shared.bootstrap, shared.binding); only the adapters are
fakes, so no SDK is built or imported. Settings come from an empty environment and are never used for building.
"""

from __future__ import annotations

from typing import Any

from shared.bootstrap import Container
from shared.settings import Settings
from tests.fakes.alertlog import FakeAlertLog
from tests.fakes.outbound import FakeAlerts


class FakePorts(Container):
    def __init__(self, world: Any, publisher: FakeAlerts | None = None, alerts: FakeAlerts | None = None) -> None:
        super().__init__(Settings.from_env({}))
        self.world = world
        self.fake_publisher = publisher or FakeAlerts()
        self.fake_alerts = alerts or FakeAlerts()
        self.fake_alert_log = FakeAlertLog()
        self.read: list[str] = []

    def _port(self, name: str, value: Any) -> Any:
        self.read.append(name)
        return value

    @property
    def inventory(self):
        return self._port("inventory", self.world.inventory)

    @property
    def vault(self):
        return self._port("vault", self.world.vault)

    @property
    def access(self):
        return self._port("access", self.world.access)

    @property
    def clock(self):
        return self._port("clock", self.world.clock)

    @property
    def roles(self):
        return self._port("roles", self.world.ports()["roles"])

    @property
    def claims(self):
        return self._port("claims", self.world.claims)

    @property
    def audit(self):
        return self._port("audit", self.world.audit)

    @property
    def alert_log(self):
        return self._port("alert_log", self.fake_alert_log)

    @property
    def pacer(self):
        return self._port("pacer", self.world.sweep_ports()["pacer"])

    @property
    def dekstore(self):
        return self._port("dekstore", self.world.dekstore)

    @property
    def shardkeys(self):
        return self._port("shardkeys", self.world.shardkeys)

    @property
    def consumers(self):
        return self._port("consumers", self.world.consumers)

    @property
    def rewrap_queue(self):
        return self._port("rewrap_queue", self.world.rewrap_queue)

    @property
    def move_queue(self):
        return self._port("move_queue", self.world.move_queue)

    @property
    def reconcile_queue(self):
        return self._port("reconcile_queue", self.world.reconcile_queue)

    @property
    def follow_up_delay(self):
        return self._port("follow_up_delay", 3)

    @property
    def budget(self):
        return self._port("budget", self.world.budget)

    @property
    def revocations(self):
        return self._port("revocations", self.world.revocations)

    @property
    def access_checks(self):
        return self._port("access_checks", self.world.access_checks)

    @property
    def telemetry(self):
        return self._port("telemetry", self.world.telemetry)

    @property
    def sleep(self):
        return self._port("sleep", lambda seconds: None)

    @property
    def vault_settings(self):
        return self._port("vault_settings", self.world.vaults)

    @property
    def alerts(self):
        return self._port("alerts", self.fake_alerts)

    @property
    def publisher(self):
        return self._port("publisher", self.fake_publisher)

    @property
    def credential(self):
        raise AssertionError("a handler test must never build a credential")
