"""Runs `python -m devhost` as a subprocess for tests: waits for its ready line, keeps every output line, reads the
sample app's record file, and stops it with a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrun.processes import spawn

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = "tests.devhost.sample_app:app"
READY_TIMEOUT_SECONDS = 20.0
GRACE_SECONDS = 0.5
REPORT_LINES = 60


@dataclass
class DevHost:
    process: subprocess.Popen[str]
    record_path: Path
    ready: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    _arrivals: list[float] = field(default_factory=list)  # time.monotonic() when each line was read, for diagnostics
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _eof: bool = False
    _reader_error: BaseException | None = None

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._arrivals.append(time.monotonic())
                    self._changed.notify_all()
        except BaseException as error:  # a dead reader would look like a silent host: say so in failures
            self._reader_error = error
            raise
        finally:
            with self._changed:
                self._eof = True
                self._changed.notify_all()

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = 10.0, start: int = 0) -> str:
        """The first output line (from index `start`) that satisfies `predicate`, waiting for it to be printed.

        Lines the host wrote before the deadline may still sit in the pipe if this process was starved (the reader
        thread had no chance to run), so one short grace re-check follows the deadline before giving up.
        """
        began = time.monotonic()
        began_wall = time.time()
        deadline = began + timeout
        with self._changed:
            scanned = start
            grace_used = False
            while True:
                for line in self.lines[scanned:]:
                    if predicate(line):
                        return line
                scanned = max(scanned, len(self.lines))
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    if not self._eof and not grace_used:
                        grace_used = True
                        self._changed.wait(GRACE_SECONDS)
                        continue
                    raise AssertionError(self._no_match_report(timeout, start, began, began_wall))
                self._changed.wait(min(remaining, 0.2))

    def _no_match_report(self, timeout: float, start: int, began: float, began_wall: float) -> str:
        """Everything needed to tell a host that never printed the line from a harness that missed it."""
        since = list(zip(self.lines[start:], self._arrivals[start:], strict=True))
        shown = since[-REPORT_LINES:]
        rows = [f"  {arrived - began:+7.3f}s  {line}" for line, arrived in shown]
        waited = time.monotonic() - began
        started_at = time.strftime("%H:%M:%S", time.gmtime(began_wall)) + f".{int(began_wall % 1 * 1000):03d}Z"
        state = (
            f"host {'exited with ' + str(self.process.returncode) if self.process.poll() is not None else 'running'}, "
            f"reader {'at end of output' if self._eof else 'reading'}"
            + (f", reader failed: {self._reader_error!r}" if self._reader_error else "")
        )
        header = (
            f"no matching devhost output line within {timeout}s (waited {waited:.3f}s from {started_at} UTC; {state}); "
            f"{len(since)} line(s) since index {start} of {len(self.lines)}"
        )
        if len(since) > len(shown):
            header += f", the last {len(shown)} shown"
        if not since:
            tail = "\n".join(f"  {line}" for line in self.lines[-REPORT_LINES:])
            return f"{header}; nothing new, the last lines before it:\n{tail}"
        return f"{header} (offset = when this process read the line, from the start of the wait):\n" + "\n".join(rows)

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def records(self, function: str | None = None) -> list[dict[str, Any]]:
        """What the sample app's functions recorded, oldest first."""
        if not self.record_path.exists():
            return []
        rows = [json.loads(line) for line in self.record_path.read_text(encoding="utf-8").splitlines() if line]
        return [row for row in rows if function is None or row["function"] == function]

    def wait_for_records(
        self,
        function: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda _row: True,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Waits until `count` records of `function` satisfy `predicate`; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [row for row in self.records(function) if predicate(row)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} records of {function}, got {matching}")
            time.sleep(0.05)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stops devhost with `signum` and returns its exit code (killed after `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                return -9
        return self.process.returncode


def start_devhost(
    work_dir: Path,
    *,
    settings: dict[str, Any] | None = None,
    host_json: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    app: str = SAMPLE_APP,
) -> DevHost:
    """Starts devhost in `work_dir` (where local.settings.json and host.json are written when given) on a free port."""
    work_dir.mkdir(parents=True, exist_ok=True)
    record_path = work_dir / "records.jsonl"
    if settings is not None:
        (work_dir / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    if host_json is not None:
        (work_dir / "host.json").write_text(json.dumps(host_json), encoding="utf-8")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEVHOST_", "AzureWebJobs")) and key != "PYTHONPATH"
    }
    environment.update(
        {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "DEVHOST_SAMPLE_RECORD": str(record_path)}
    )
    environment.update(env or {})
    process = spawn(
        [sys.executable, "-m", "devhost", "--app", app, "--port", "0"],
        cwd=work_dir,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",  # a stray byte must not end the reader thread (and with it every later wait)
    )
    host = DevHost(process=process, record_path=record_path)
    threading.Thread(target=host._read, name=f"devhost-output-{process.pid}", daemon=True).start()
    try:
        line = host.wait_for_line(lambda text: text.startswith('{"devhost": "ready"'), timeout=READY_TIMEOUT_SECONDS)
    except AssertionError:
        host.stop(signal.SIGKILL)
        raise
    host.ready = json.loads(line)
    return host


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def executed_line(function: str, status: str) -> re.Pattern[str]:
    """Core Tools' 'Executed' line for `function` with `status` (Succeeded/Failed); group 1 is the invocation id."""
    return re.compile(rf"Executed 'Functions\.{re.escape(function)}' \({status}, Id=({UUID}), Duration=\d+ms\)")
