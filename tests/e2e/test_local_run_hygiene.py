"""What the local run leaves on disk: its state is this user's only, and no log line carries a key."""

from __future__ import annotations

import stat

import pytest

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire

pytestmark = pytest.mark.e2e


def test_no_key_reaches_a_log_and_the_logs_are_private(system: LocalSystem, wire: Wire) -> None:
    assert wire.keys()["summary"]["keys"] == 2  # some traffic first, so the devhost has logged requests
    assert wire.run_function("compliance_sweep").status_code == 202
    secrets = {name: system.devhost[f"{name}_key"] for name in ("function", "master", "eventgrid")}
    logs = sorted((system.state_dir / "logs").glob("*.log"))
    assert {log.name for log in logs} >= {"azurite.log", "emulators.log", "devhost.log"}
    for log in logs:
        text = log.read_text()
        assert [name for name, key in secrets.items() if key in text] == [], log.name
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log.name
    assert stat.S_IMODE((system.state_dir / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE(system.state_dir.stat().st_mode) == 0o700
    assert '{"devhost": "ready"' in (system.state_dir / "logs" / "devhost.log").read_text()
