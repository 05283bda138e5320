"""Fixtures for devhost's tests: one Azurite and one devhost (serving tests/devhost/sample_app.py against it) for the
whole session, both stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devhost.devhost_process import DevHost, start_devhost
from tests.support.azurite import Azurite, start_azurite

FUNCTION_KEY = "test-function-key"
MASTER_KEY_IN_FILE = "master-key-from-file"
MASTER_KEY = "master-key-from-environment"
EVENTGRID_KEY = "test-eventgrid-key"
QUEUE = "work-items"
MAX_DEQUEUE_COUNT = 3

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {
            "batchSize": 4,
            "maxDequeueCount": MAX_DEQUEUE_COUNT,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64",
        }
    },
}


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    emulator = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def devhost(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite) -> Iterator[DevHost]:
    """devhost with local.settings.json (keys, storage) and a host.json with quick queue retries.

    The master key is also set in the environment, to a different value: the environment must win, as in Core Tools.
    """
    work_dir: Path = tmp_path_factory.mktemp("devhost")
    settings = {
        "IsEncrypted": False,
        "Values": {
            "AzureWebJobsStorage": azurite.connection_string,
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
            "DEVHOST_MASTER_KEY": MASTER_KEY_IN_FILE,
            "DEVHOST_EVENTGRID_KEY": EVENTGRID_KEY,
        },
    }
    host = start_devhost(work_dir, settings=settings, host_json=HOST_JSON, env={"DEVHOST_MASTER_KEY": MASTER_KEY})
    try:
        yield host
    finally:
        code = host.stop()
        assert code == 0, f"devhost exited with {code}; output:\n{host.output()[-4000:]}"
