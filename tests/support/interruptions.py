"""A pytest plugin (tests/conftest.py loads it): an interrupted test run leaves nothing behind.

SIGTERM and SIGHUP end pytest as Ctrl-C does, and so does SIGINT even where it was inherited ignored
(KeyboardInterrupt, so every fixture's teardown stops what it started), and at the very end whatever a fixture had no
chance to stop (it was interrupted while starting it) is stopped too.
Every child a fixture starts goes through localrun.processes.spawn; with END_CHILDREN_WITH_PARENT set here, and
inherited by every process the run starts (the local system's and the soak's included), a child also ends when its
parent is killed outright, pytest included. tests/localrun/test_interrupted_run.py checks all of it.
"""

from __future__ import annotations

import atexit
import os
import signal

import pytest

from localrun.processes import END_CHILDREN_WITH_PARENT, stop_spawned


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"pytest received {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    os.environ[END_CHILDREN_WITH_PARENT] = "1"
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    # A run started as a background job of a non-interactive shell (as CI scripts start it) inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt for it: Ctrl-C or a SIGINT would be lost and the run go on.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit.register(stop_spawned)  # also when pytest ends without unconfiguring (an error in a plugin, say)


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_spawned()
