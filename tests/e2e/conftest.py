"""The whole local system (Azurite, emulators, devhost serving function_app.py, seeded with the reference inventory),
brought up once per test session through the same code as scripts/run, on free ports.

Later capabilities add their end-to-end scenarios as tests using `system` (and `wire` for HTTP + log helpers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from localrun.system import LocalSystem, Ports

ROOT = Path(__file__).resolve().parents[2]
# Fast retries for tests: the same host.json shape, shorter waits (production keeps its own host.json).
FAST_QUEUES = {"maxPollingInterval": "00:00:01", "visibilityTimeout": "00:00:01", "batchSize": 16, "maxDequeueCount": 3}


@dataclass
class Wire:
    """HTTP to the devhost with the right keys, and the function log."""

    system: LocalSystem

    @property
    def url(self) -> str:
        return self.system.devhost["url"]

    def get(self, path: str, *, key: str | None = "function", **kwargs) -> requests.Response:
        headers = {"x-functions-key": self.system.devhost[f"{key}_key"]} if key else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def post(self, path: str, *, key: str | None = "function", **kwargs) -> requests.Response:
        headers = {"x-functions-key": self.system.devhost[f"{key}_key"]} if key else {}
        return requests.post(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def run_function(self, name: str, payload: str = "") -> requests.Response:
        return requests.post(
            f"{self.url}/admin/functions/{name}",
            json={"input": payload},
            headers={"x-functions-key": self.system.devhost["master_key"]},
            timeout=30,
        )

    def mark(self) -> int:
        """A position in the function log; wait_for_log looks only after it."""
        return len(self.system.devhost_child().lines)

    def wait_for_log(self, predicate, *, after: int, timeout: float = 30.0) -> str:
        return self.system.devhost_child().wait_for(predicate, timeout, start=after)

    def keys(self) -> dict:
        response = self.get("/api/keys")
        assert response.status_code == 200, response.text
        return response.json()


def write_host_json(path: Path, queues: dict) -> Path:
    host = json.loads((ROOT / "host.json").read_text())
    host["extensions"]["queues"].update(queues)
    path.write_text(json.dumps(host))
    return path


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    state = tmp_path_factory.mktemp("local-system")
    local = LocalSystem(
        state,
        ports=Ports.free(),
        # Audit mode: the shared system's drift must stay in place for the tests that observe it (enforce mode's
        # remediation is tested on systems of its own, tests/e2e/test_access_over_the_wire.py).
        extra_settings={"CMK_SWEEP_SCHEDULE": "*/2 * * * * *", "CMK_MODE": "audit"},
        host_json=write_host_json(state / "host.json", FAST_QUEUES),
    )
    with local:
        yield local


@pytest.fixture(scope="session")
def wire(system: LocalSystem) -> Wire:
    return Wire(system)


NEVER = "0 0 0 1 1 *"  # a sweep schedule that never fires during a test: the test runs the sweep when it wants


def fresh_system(tmp_path: Path, inventory: Path | None = None, **settings: str) -> LocalSystem:
    """A local system of a test's own (for tests that move the clock or change the mode), sweep on demand only; it
    seeds and serves `inventory` (the reference when None)."""
    return LocalSystem(
        tmp_path / "run",
        ports=Ports.free(),
        inventory=inventory,
        extra_settings={"CMK_SWEEP_SCHEDULE": NEVER, **settings},
        host_json=write_host_json(tmp_path / "host.json", FAST_QUEUES),
    )


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def let_rbac_propagate(system: LocalSystem) -> dict:
    """Let every pending role assignment change reach Key Vault, as one waits for it in Azure: the emulated clock
    moves by the longest pending delay (up to 10 emulated minutes; consumers check at every emulated minute on the
    way). Call it after a grant or a removal whose effect on Key Vault or a consumer the test then expects."""
    return system.cloud.let_rbac_propagate()


def rbac_propagation(system: LocalSystem) -> dict:
    """{max_seconds, pending, windows, minute_checks, unavailable} of the emulated RBAC propagation."""
    return system.cloud.admin("GET", "/rbac/propagation")


def topic_events(system: LocalSystem, event_type: str, key: str) -> list[dict]:
    """The app's alerts that reached the Event Grid topic, of one type, about one key."""
    events = system.cloud.admin("GET", "/eventgrid/topic-events")["value"]
    return [e for e in events if e.get("type") == event_type and (e.get("data") or {}).get("key") == key]


def audit_records(wire: Wire, key: str) -> list[dict]:
    response = wire.get(f"/api/audit?key={key}")
    assert response.status_code == 200, response.text
    return response.json()["records"]
