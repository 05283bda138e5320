"""devhost without local.settings.json or host.json (generated keys, a queue function left in error while the rest
runs), a timer fired late after the process was suspended (past due), signals, and apps that cannot be loaded."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.devhost.devhost_process import REPO_ROOT, DevHost, start_devhost


@pytest.fixture(scope="module")
def bare_devhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    host = start_devhost(tmp_path_factory.mktemp("bare"))
    try:
        yield host
    finally:
        assert host.stop() == 0


def test_keys_are_generated_when_not_configured(bare_devhost: DevHost) -> None:
    keys = [bare_devhost.ready[name] for name in ("function_key", "master_key", "eventgrid_key")]
    assert all(len(key) >= 32 for key in keys)
    assert len(set(keys)) == 3
    url = f"{bare_devhost.url}/api/items/3"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, params={"code": bare_devhost.ready["function_key"]}, timeout=5).status_code == 200


def test_a_queue_function_without_storage_is_in_error_and_the_rest_runs(bare_devhost: DevHost) -> None:
    bare_devhost.wait_for_line(
        lambda line: (
            "The 'work_items' function is in error: connection setting 'AzureWebJobsStorage' is not set" in line
        )
    )
    assert requests.get(f"{bare_devhost.url}/api/greet/x", timeout=5).text == "hello x"


def test_a_timer_that_fires_late_is_past_due(bare_devhost: DevHost) -> None:
    """Suspend the process across a scheduled run: the run that comes after it is late, hence past due."""
    bare_devhost.wait_for_records("every_two_seconds")
    start = len(bare_devhost.lines)
    bare_devhost.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3.2)
    finally:
        bare_devhost.send_signal(signal.SIGCONT)
    late = bare_devhost.wait_for_records("every_two_seconds", lambda row: row["past_due"], timeout=5)
    assert late[0]["past_due"] is True
    bare_devhost.wait_for_line(lambda line: "every_two_seconds: timer is past due" in line, start=start)
    # and the schedule carries on as before: the next run is on time again
    count = len(bare_devhost.records("every_two_seconds"))
    following = bare_devhost.wait_for_records("every_two_seconds", count=count + 1, timeout=5)[-1]
    assert following["past_due"] is False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_the_host_with_exit_code_0(tmp_path: Path, signum: int) -> None:
    host = start_devhost(tmp_path)
    assert host.stop(signum) == 0
    assert "Host stopped" in host.output()


def test_sigterm_does_not_wait_for_a_stuck_sync_function(tmp_path: Path) -> None:
    host = start_devhost(tmp_path)
    answers: list[object] = []

    def call() -> None:
        try:
            answers.append(requests.get(f"{host.url}/api/sleep/60", timeout=30).status_code)
        except requests.RequestException as error:
            answers.append(type(error).__name__)

    caller = threading.Thread(target=call, name="slow-call", daemon=True)
    caller.start()
    host.wait_for_line(lambda line: "Executing 'Functions.sleep'" in line)
    started = time.monotonic()
    assert host.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert "1 sync function run(s) still in progress" in host.output()
    caller.join(timeout=5)
    assert answers, "the caller was left hanging"


def run_devhost(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "--port", "0", *args],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_an_app_that_cannot_be_found_is_a_clear_error(tmp_path: Path) -> None:
    result = run_devhost(tmp_path, "--app", "no_such_module:app")
    assert result.returncode == 1
    assert "module 'no_such_module' not found" in result.stderr


def test_a_bad_route_names_the_function(tmp_path: Path) -> None:
    (tmp_path / "bad_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.route(route='things/{id:integer}')\n"
        "def things(req): return 'x'\n",
        encoding="utf-8",
    )
    result = run_devhost(tmp_path, "--app", "bad_app:app")
    assert result.returncode == 1
    assert re.search(r"function 'things'.*'integer'.*unknown constraint", result.stderr)


def test_a_malformed_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {"A": [1]}}', encoding="utf-8")
    result = run_devhost(tmp_path, "--app", "tests.devhost.sample_app:app")
    assert result.returncode == 1
    assert "local.settings.json: Values.A: must be a string, number or boolean" in result.stderr
