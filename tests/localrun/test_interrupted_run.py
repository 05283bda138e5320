"""An interrupted test run leaves nothing behind: a pytest that brings up the emulators, Azurite, devhost and the
whole local system is signalled partway (SIGTERM, SIGINT, SIGHUP, or SIGKILL, which it cannot catch; and SIGTERM
while a fixture still waits for a process it started), and within a few seconds no process of that run is left. A
process belongs to the run if its environment carries the run's marker, which every child inherits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.localrun.interrupted_run_sample import READY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).with_name("interrupted_run_sample.py")
MARKER = "INTERRUPTED_TEST_RUN_MARKER"  # no CMK_ prefix: not a setting of the app
READY_TIMEOUT = 120.0  # the whole local system starts and seeds on a busy machine
EXIT_TIMEOUT = 90.0  # the interrupted pytest tears its fixtures down (on a busy 2-core machine, over 30 s)
GONE_TIMEOUT = 5.0  # then every process of the run is gone within a few seconds
pytestmark = pytest.mark.e2e  # each case starts the whole local system (about 20 s)


def processes_with(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose environment carries `marker` (this user's, still running)."""
    needle = f"{MARKER}={marker}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours
            continue
        found[int(entry.name)] = cmdline
    return found


def kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float) -> list[str]:
    """Lines of `proc`'s output up to the one containing `text`; fails (with the output) if it does not come."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buffer += chunk
            if text.encode() in buffer:
                return buffer.decode(errors="replace").splitlines()
        elif proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} within {timeout:.0f} s; the run's output:\n{buffer.decode(errors='replace')}")


def wait_for_process(marker: str, text: str, timeout: float) -> None:
    """Until a process of the run has `text` in its command line."""
    deadline = time.monotonic() + timeout
    while not any(text in cmd for cmd in processes_with(marker).values()):
        assert time.monotonic() < deadline, f"no process {text!r} within {timeout:.0f} s"
        time.sleep(0.05)


CASES = [
    pytest.param(signal.SIGTERM, "running", id="SIGTERM"),
    pytest.param(signal.SIGINT, "running", id="SIGINT"),
    pytest.param(signal.SIGHUP, "running", id="SIGHUP"),
    pytest.param(signal.SIGKILL, "running", id="SIGKILL"),
    # while a fixture waits for the devhost it started to be ready: the fixture never gets to stop it
    pytest.param(signal.SIGTERM, "starting", id="SIGTERM-while-starting"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("signum", "when"), CASES)
def test_an_interrupted_run_leaves_no_process_behind(signum: signal.Signals, when: str, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER: marker}
    argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'run'}"]
    run = subprocess.Popen(
        [*argv, str(SAMPLE)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if when == "starting":
            wait_for_process(marker, "-m devhost --app tests.devhost.sample_app", READY_TIMEOUT)
        else:
            wait_for_line(run, READY, READY_TIMEOUT)
            started = " ".join(processes_with(marker).values())
            for kind in ("-m emulators", "azurite", "-m devhost"):  # one from tests/support, one from the local system
                assert started.count(kind) == 2, f"expected two {kind!r} running, saw {started}"

        run.send_signal(signum)
        try:
            run.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pytest did not end within {EXIT_TIMEOUT:.0f} s of {signum.name}")

        deadline = time.monotonic() + GONE_TIMEOUT
        while (left := processes_with(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"{signum.name} to pytest left these running:\n" + "\n".join(
            f"  {pid}: {cmd}" for pid, cmd in sorted(left.items())
        )
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
        kill_all(processes_with(marker))  # whatever a failure left, so it does not outlive this test either
