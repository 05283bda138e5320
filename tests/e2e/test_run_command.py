"""The README's run command, started as a user starts it, and its printed guide followed literally, step by step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from localrun.processes import END_CHILDREN_WITH_PARENT, ProcessGroup, stop_leftovers

ROOT = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^\s+\$ (.+)$")
pytestmark = pytest.mark.e2e


class Run:
    """`scripts/run` in its own process group (as from a terminal), its output collected line by line."""

    def __init__(self, state_dir: Path) -> None:
        # As a user starts it: the run itself ends with pytest, its children are the run's to stop, as in a terminal.
        ignored = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", END_CHILDREN_WITH_PARENT)
        env = {k: v for k, v in os.environ.items() if k not in ignored}
        group = ProcessGroup(state_dir.parent / f"{state_dir.name}-test-pids.json", state_dir.parent / "test-logs")
        self.child = group.start(
            "run", ["scripts/run", "--free-ports", "--state-dir", str(state_dir)], env=env, cwd=ROOT
        )
        self.proc = self.child.proc
        self.lines = self.child.lines

    def wait_for(self, predicate, timeout: float = 60.0, after: int = 0) -> str:
        return self.child.wait_for(predicate, timeout, start=after)

    def steps(self) -> list[str]:
        self.wait_for(lambda line: line.startswith("Ctrl-C stops everything"), timeout=180)
        start = next(i for i, line in enumerate(self.lines) if line.startswith("Try it"))
        end = next(i for i, line in enumerate(self.lines) if line.startswith("Ctrl-C stops everything"))
        return [m.group(1) for line in self.lines[start:end] if (m := STEP.match(line))]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        return self.proc.wait(30)


def shell(command: str, **env: str) -> str:
    environment = {**os.environ, **env} if env else None
    result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def recorded_pids(state_dir: Path) -> list[int]:
    return [entry["pid"] for entry in json.loads((state_dir / "pids.json").read_text()).values()]


def test_following_the_printed_guide(tmp_path):
    state = tmp_path / "run"
    run = Run(state)
    try:
        steps = run.steps()
        keys, clock, grant, keys_again, sweep, policy, window, keys_rotated, audit, rotate = steps[:10]
        plan, revoke, settle, watch, restore, settle_again = steps[10:]

        # 1. every managed key, compliant as seeded
        report = json.loads(shell(keys))
        assert report["summary"] == {"keys": 2, "compliant": 2, "findings": {}}

        # 2. move the clock: rotation policy -> new versions -> KeyNewVersionCreated reaches keyvault_events
        mark = len(run.lines)
        assert "now" in json.loads(shell(clock))
        for key in ("aks-encryption-key", "mysql-encryption-key"):
            run.wait_for(
                lambda line, key=key: "keyvault_events:" in line and "KeyNewVersionCreated" in line and key in line,
                after=mark,
            )
        # The app judges time on the emulated clock: 91 days on, both keys are on their new, compliant versions.
        later = json.loads(shell(keys))
        assert later["generated_at"][:10] > report["generated_at"][:10]
        assert {k["version"] for k in later["keys"]}.isdisjoint({k["version"] for k in report["keys"]})
        assert later["summary"]["compliant"] == 2

        # 3. drift over ARM: the event reaches role_assignment_events, which removes the grant (enforce mode)
        mark = len(run.lines)
        assert json.loads(shell(grant))["key"] == "mysql-encryption-key"
        run.wait_for(lambda line: "role_assignment_events:" in line and "ResourceWriteSuccess" in line, after=mark)
        run.wait_for(lambda line: "role_assignment_events: handled" in line, after=mark)
        # the event only enqueues: the key is reconciled by the cmk-reconcile worker
        run.wait_for(lambda line: "access_reconcile:" in line and "mysql-encryption-key" in line, after=mark)
        assert json.loads(shell(keys_again))["summary"]["compliant"] == 2

        # 4. run the sweep through the admin API
        mark = len(run.lines)
        assert "202 Accepted" in shell(sweep)
        run.wait_for(lambda line: "Executed 'Functions.compliance_sweep' (Succeeded" in line, after=mark)

        # 5. the app rotates: no Rotate action in the vault, the clock in the near-expiry window -> one rotation
        before = {k["name"]: k["version"] for k in json.loads(shell(keys))["keys"]}
        assert [a["action"] for a in json.loads(shell(policy))["lifetime_actions"]] == ["Notify"]
        mark = len(run.lines)
        assert "now" in json.loads(shell(window))
        run.wait_for(
            lambda line: "keyvault_events: handled" in line and "KeyNearExpiry" in line and '"rotated"' in line,
            after=mark,
        )
        after = {k["name"]: k["version"] for k in json.loads(shell(keys_rotated))["keys"]}
        assert after["aks-encryption-key"] != before["aks-encryption-key"]
        records = json.loads(shell(audit))["records"]
        assert [r["to_version"] for r in records if r["outcome"] == "rotated"] == [after["aks-encryption-key"]]
        first = shell(rotate)
        assert first.startswith("HTTP/1.1 201"), first
        assert shell(rotate).startswith("HTTP/1.1 200")  # the same request again: already rotated

        # 6. revoke, watch, restore: a plan first, then the revocation, verified by its follow-up, then given back
        planned = json.loads(shell(plan))
        assert planned["dry_run"] is True and len(planned["plan"]["remove"]) == 1
        executed = shell(revoke)
        assert executed.startswith("HTTP/1.1 202"), executed
        revocation_id = json.loads(executed.split("\n\n", 1)[1])["id"]
        assert f"Location: /api/revocations/{revocation_id}" in executed
        settled = json.loads(shell(settle))  # RBAC propagation: the removal reaches Key Vault
        assert settled["pending"] == [] and settled["windows"] >= 1
        deadline = time.monotonic() + 60
        while (state_now := json.loads(shell(watch, REVOCATION_ID=revocation_id))["state"]) != "verified":
            assert state_now == "executed" and time.monotonic() < deadline, state_now
            time.sleep(0.5)
        restored = shell(restore, REVOCATION_ID=revocation_id)
        assert restored.startswith("HTTP/1.1 202"), restored
        assert json.loads(shell(watch, REVOCATION_ID=revocation_id))["state"] == "restored"
        assert json.loads(shell(settle_again))["pending"] == []

        children = recorded_pids(state)
        assert len(children) == 3
    finally:
        code = run.stop()
    assert code == 0
    assert not (state / "pids.json").exists()
    assert [pid for pid in children if alive(pid)] == []


def test_a_second_run_cleans_up_after_a_crashed_one(tmp_path):
    state = tmp_path / "run"
    first = Run(state)
    try:
        first.steps()
        orphans = recorded_pids(state)
        os.killpg(first.proc.pid, signal.SIGKILL)  # the run itself dies; its children live on in their own groups
        first.proc.wait(10)
        # A child whose output pipe lost its reader may die at its next write (Azurite's node does on EPIPE); the
        # others live on in their own groups, and those are what the next run must find and stop.
        orphans = [pid for pid in orphans if alive(pid)]
        assert orphans

        second = Run(state)
        try:
            second.wait_for(lambda line: "stopped what an earlier run left running" in line, timeout=60)
            second.steps()
            assert [pid for pid in orphans if alive(pid)] == []
        finally:
            assert second.stop() == 0
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
        stop_leftovers(state / "pids.json")  # when the test failed before the second run could clean up


def session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[3])  # field 6 of stat: the session id


def processes_in_sessions(sessions: set[int]) -> list[int]:
    """Every live process in one of `sessions` (each child of a run leads its own, so grandchildren count too)."""
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [pid for pid in pids if session_of(pid) in sessions]


def test_ctrl_c_under_tee_leaves_nothing_running(tmp_path):
    """`scripts/run | tee log`, then Ctrl-C: the terminal signals the whole pipeline, tee dies first, and the run's
    next write to stdout meets a broken pipe. It must still stop every process it started."""
    state, log = tmp_path / "run", tmp_path / "tee.log"
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    # One process group for the pipeline, as a terminal's foreground job; tee's own output is what this test reads.
    group = ProcessGroup(tmp_path / "test-pids.json", tmp_path / "test-logs")
    pipeline = group.start(
        "pipeline",
        ["bash", "-c", f"scripts/run --free-ports --state-dir {state} | tee {log}"],
        env=env,
        cwd=ROOT,
    )
    try:
        pipeline.wait_for(lambda line: line.startswith("Ctrl-C stops everything"), timeout=180)
        # tee writes its stdout before its file: wait for the file too, or Ctrl-C may land between the two writes.
        deadline = time.monotonic() + 10
        while "Ctrl-C stops everything" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        children = recorded_pids(state)
        assert len(children) == 3
        run_sessions = {pipeline.proc.pid, *children}
        assert len(processes_in_sessions(run_sessions)) >= 6  # bash, python, tee and the three children

        os.killpg(pipeline.proc.pid, signal.SIGINT)  # Ctrl-C: every process of the foreground job
        pipeline.proc.wait(60)
    finally:
        group.stop()

    try:
        assert processes_in_sessions(run_sessions) == []
        assert not (state / "pids.json").exists()
        assert "Ctrl-C stops everything" in log.read_text()
    finally:
        stop_leftovers(state / "pids.json")  # a failed run must not leave its children to the next test
