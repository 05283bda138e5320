"""Child processes of the local run: start, wait for their ready line, tee their output, stop them all.

Every child gets its own process group and is written to a pid file, so a run that crashed (or was killed) leaves
nothing behind that the next run cannot find and stop. Every child is started through `spawn`, which records it for
`stop_spawned` (what a process being stopped calls last) and, where END_CHILDREN_WITH_PARENT is set in the
environment (the test suite sets it), also ties it to this process: on Linux it receives SIGTERM when this process
ends, however it ends, even by SIGKILL. scripts/run does not set it: a run killed outright leaves its children for the
next run to find and stop, as it always has.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _drained: bool = False  # the pump read the child's output to its end

    def wait_for(self, predicate: Callable[[str], bool], timeout: float, start: int = 0) -> str:
        """Block until a line of output (from index `start`) satisfies `predicate`; the matching line."""
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                while seen < len(self.lines):
                    line = self.lines[seen]
                    seen += 1
                    if predicate(line):
                        return line
                # exited is not enough: lines it printed before exiting may still be in the pipe
                if self._drained and self.proc.poll() is not None and seen >= len(self.lines):
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")
                self._cond.wait(min(left, 0.2))

    def output_since(self, start: int = 0) -> list[str]:
        with self._cond:
            return list(self.lines[start:])


class ProcessGroup:
    """The children of one run, recorded in `pid_file` as they start."""

    def __init__(self, pid_file: Path, log_dir: Path, echo: IO[str] | None = None) -> None:
        self.pid_file = pid_file
        self.log_dir = log_dir
        self.echo = echo
        self.children: list[Child] = []
        self._echo_names: set[str] = set()
        self._hidden: set[str] = set()

    def hide(self, *secrets: str) -> None:
        """Values that never reach a log file or the echo (replaced by ***): the run's function keys, say. The lines
        kept in memory stay as printed, so a caller can still read a ready line it is waiting for."""
        self._hidden.update(secret for secret in secrets if secret)

    def _scrub(self, line: str) -> str:
        for secret in self._hidden:
            line = line.replace(secret, "***")
        return line

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, echo: bool = False) -> Child:
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.chmod(0o700)
        log_path = self.log_dir / f"{name}.log"
        proc = spawn(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        child = Child(name, proc, log_path)
        self.children.append(child)
        if echo:
            self._echo_names.add(name)
        self._write_pids()
        threading.Thread(target=self._pump, args=(child,), daemon=True, name=f"pump-{name}").start()
        return child

    def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        try:
            with _private_log(child.log_path) as log:
                for line in child.proc.stdout:
                    line = line.rstrip("\n")
                    shown = self._scrub(line)
                    log.write(shown + "\n")
                    log.flush()
                    with child._cond:
                        child.lines.append(line)
                        child._cond.notify_all()
                    if child.name in self._echo_names:
                        self._echo_line(f"[{child.name}] {shown}")
        finally:
            with child._cond:
                child._drained = True
                child._cond.notify_all()

    def _echo_line(self, text: str) -> None:
        """Echo to the terminal, or stop echoing once it is gone (`| tee` ended by Ctrl-C): a broken pipe must not
        kill this pump, or the child would block on a full pipe and its log would stop."""
        echo = self.echo
        if echo is None:
            return
        try:
            echo.write(text + "\n")
            echo.flush()
        except (OSError, ValueError):
            self.echo = None

    def _write_pids(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        pids = {
            c.name: {"pid": c.proc.pid, "start": _start_time(c.proc.pid)}
            for c in self.children
            if c.proc.poll() is None
        }
        self.pid_file.write_text(json.dumps(pids))

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every child's process group (newest first), then SIGKILL what is still running. Nothing here raises
        for one child and forgets the others: this runs on Ctrl-C, when the terminal may already be gone."""
        for child in reversed(self.children):
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(5)
        self.children.clear()
        self.pid_file.unlink(missing_ok=True)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: a child between fork and exec loads nothing
except (OSError, AttributeError):  # not Linux: the process group and stop_spawned remain
    _prctl = None

END_CHILDREN_WITH_PARENT = "LOCALRUN_END_CHILDREN_WITH_PARENT"  # "1": every spawned child ends with its parent

_spawned: dict[int, subprocess.Popen] = {}  # every child spawn() started, by pid, until it is known to have ended
_spawned_lock = threading.Lock()


def spawn(argv: list[str], **popen_kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen(argv, **popen_kwargs)` for a child of the run.

    The child leads a process group of its own (a terminal's Ctrl-C reaches this process only, which stops its
    children in order; and stopping the group stops the child's own children too), and is recorded for
    `stop_spawned`. Where END_CHILDREN_WITH_PARENT is "1", the child also asks Linux for SIGTERM when its parent
    ends (PR_SET_PDEATHSIG), so even a SIGKILL of this process leaves no child running. The kernel ties that to the
    thread that starts the child, so only a child started from the main thread asks for it: one started from a
    worker thread would be stopped when that thread ends.
    """
    proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()), **popen_kwargs)
    with _spawned_lock:
        for pid in [pid for pid, known in _spawned.items() if known.returncode is not None]:
            del _spawned[pid]
        _spawned[proc.pid] = proc
    return proc


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    if os.environ.get(END_CHILDREN_WITH_PARENT) != "1" or _prctl is None:
        return None
    if threading.current_thread() is not threading.main_thread():
        return None

    def in_child() -> None:  # between fork and exec: a system call and nothing that could wait for a lock
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the request took hold: nobody would stop this child
            os._exit(1)

    return in_child


def stop_spawned(timeout: float = 5.0) -> list[int]:
    """SIGTERM the process group of every spawned child still running, then SIGKILL what outlives `timeout`: the
    last word of a process that is being ended, for children whose owner never got to stop them (interrupted while
    starting them, say). The pids it signalled. Never raises: it runs while this process is going away."""
    with _spawned_lock:
        running = [proc for proc in _spawned.values() if proc.poll() is None]
        _spawned.clear()
    for proc in running:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
    return [proc.pid for proc in running]


def _private_log(path: Path) -> IO[str]:
    """The log opened for appending, readable by its owner only (a log may hold what a child printed about itself)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # a log an older run left may be wider
    return os.fdopen(fd, "a", encoding="utf-8")


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_leftovers(pid_file: Path, timeout: float = 10.0) -> list[str]:
    """Stop what a previous run recorded and did not clean up (it crashed or was killed). Names of what was stopped."""
    try:
        recorded = json.loads(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return []
    stopped = []
    for name, entry in recorded.items():
        pid = entry.get("pid") if isinstance(entry, dict) else None
        # The start time guards against a recycled pid: never signal a process this run did not start.
        if not isinstance(pid, int) or not _alive(pid) or _start_time(pid) != entry.get("start"):
            continue
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
        stopped.append(name)
    pid_file.unlink(missing_ok=True)
    return stopped


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie of ours still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
