"""The local run's child processes: their logs are private and carry no secret the run knows, and an echo whose
reader has gone (a broken `| tee`) neither stops the log nor the child."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from localrun.processes import ProcessGroup

SECRET = "s3cr3t-master-key-value"


class BrokenPipeStream:
    """stdout after `tee` died: every write fails."""

    def __init__(self) -> None:
        self.attempts = 0

    def write(self, text: str) -> int:
        self.attempts += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def run_child(tmp_path: Path, script: str, echo=None) -> tuple[ProcessGroup, Path]:
    group = ProcessGroup(tmp_path / "pids.json", tmp_path / "logs", echo=echo)
    group.hide(SECRET, "")
    child = group.start("child", [sys.executable, "-c", script], env={}, cwd=tmp_path, echo=True)
    child.wait_for(lambda line: line == "done", timeout=30)
    child.proc.wait(30)
    group.stop()
    return group, child.log_path


def test_logs_are_private_and_hide_the_runs_secrets(tmp_path: Path) -> None:
    _, log = run_child(tmp_path, f"print('key={SECRET} in a line'); print('done')")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    text = log.read_text()
    assert SECRET not in text and "key=*** in a line" in text


def test_a_log_left_world_readable_by_an_older_run_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir(mode=0o755)
    old = tmp_path / "logs" / "child.log"
    old.write_text("from before\n")
    old.chmod(0o644)
    _, log = run_child(tmp_path, "print('done')")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert log.read_text() == "from before\ndone\n"


def test_a_broken_echo_stops_echoing_but_not_the_log(tmp_path: Path) -> None:
    stream = BrokenPipeStream()
    script = "import sys\nfor i in range(2000): print('line', i)\nprint('done')"
    group, log = run_child(tmp_path, script, echo=stream)
    assert stream.attempts == 1 and group.echo is None  # tried once, then let go
    assert log.read_text().splitlines()[-1] == "done"  # every line still logged: the pump lived on
