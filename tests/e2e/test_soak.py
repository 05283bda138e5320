"""A short lifecycle soak in the suite: bench/soak.py, as a process, through 185 emulated days (two rotations of each
key) with every fault kind at least once and one revocation and restore cycle, must end with no invariant violated,
no DEK lost, no extra version and no key material in any log. The long soak (`--days 730`) is the benchmark's; this
keeps its machinery honest (about 75 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KINDS = (
    "429-storm",
    "429-storm-no-retry-after",
    "503",
    "dropped",
    "eventgrid-duplicate",
    "eventgrid-reorder",
    "access-drift",
    "kill-mid-rewrap",
    "kill-mid-rotation",
    "revocation",
)


@pytest.mark.timeout(600)
def test_a_short_soak_with_every_fault_kind_keeps_every_invariant(tmp_path):
    argv = [
        sys.executable, str(ROOT / "bench" / "soak.py"),
        "--days", "185", "--step-days", "6", "--deks", "100", "--seed", "7", "--fault-rate", "0",
        "--keep", str(tmp_path / "soak"),
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=580)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    summary = json.loads(lines[-1])
    assert summary["violations"] == [], summary["violations"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary["invariant_violations"] == 0
    assert summary["deks_lost"] == 0 and summary["key_material_leaks"] == 0
    assert summary["extra_versions"] == 0 and summary["unsanctioned_unavailable_steps"] == 0
    assert summary["rotations"] == summary["expected_rotations"] == 4  # two keys, due at day 90 and day 180
    assert {kind for kind, n in summary["faults"].items() if n > 0} >= set(KINDS)
    assert summary["drift_injected"] == summary["drift_remediated"] >= 1
    assert summary["alerts"].get("CmkGuardian.Access.Remediated", 0) >= 1
    assert summary["deks"] > 100  # the application kept making DEKs as it went
    assert summary["revocation_cycles"] == 1
    # Azure's time was on: role changes propagated in windows, checked at every emulated minute, none costing a
    # consumer its key outside the revocation; consumer key changes were long-running operations, one write each.
    propagation = summary["propagation"]
    assert propagation["max_seconds"] == 600 and propagation["windows_checked"] >= 1
    assert propagation["minute_checks"] >= propagation["windows_checked"]
    assert propagation["unavailable_minutes_unsanctioned"] == 0
    assert summary["long_running"]["seconds"] > 30 and summary["long_running"]["operations"].get("Succeeded", 0) >= 1
    assert set(summary["eventgrid"]) == {"deliveries", "timeouts", "redeliveries_after_timeout"}
    for alert in ("AccessRevoked", "AccessRestored", "Verified"):
        assert summary["alerts"].get(f"CmkGuardian.Revocation.{alert}", 0) >= 1, alert
