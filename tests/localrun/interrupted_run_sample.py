"""Not collected by default (no `test_` prefix): tests/localrun/test_interrupted_run.py runs it in a pytest of its
own and interrupts that run partway. It brings up the suite's real process fixtures (the emulators of the contract
tests, the Azurite and devhost of devhost's tests, the whole local system of the end-to-end tests), says so, and
waits to be interrupted."""

from __future__ import annotations

import time

from tests.devhost.conftest import azurite, devhost  # noqa: F401  (fixtures, used by name)
from tests.e2e.conftest import system  # noqa: F401

READY = "interrupted-run-sample: every fixture is up"


def test_waits_with_every_process_fixture_up(cloud_with_app_identity, devhost, system) -> None:  # noqa: F811
    print(READY, flush=True)
    time.sleep(120)
