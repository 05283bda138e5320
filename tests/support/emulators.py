"""Start the local cloud emulators (`python -m emulators`) as a subprocess and drive their admin API.

Reusable by any test suite (emulator, contract, end-to-end): `start_emulators(tmp_dir)` returns once the emulators
print their ready line and gives their URLs, the CA bundle, the tenant, SDK client factories and the admin helpers
(clock, faults, latency, throttling, counters, reset). `stop()` sends SIGTERM and waits.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrun.processes import spawn

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 20.0


class EmulatorError(RuntimeError):
    """The emulators did not start, or an admin call failed; the message carries their stderr or the reply."""


@dataclass
class Emulators:
    process: subprocess.Popen
    info: dict[str, Any]
    stderr_path: Path
    ready_seconds: float  # wall time from spawn to the ready line, as the caller saw it
    _ssl: ssl.SSLContext = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ssl = ssl.create_default_context(cafile=self.ca_cert)

    # ---- what the ready line said -------------------------------------------------------------------------
    @property
    def arm_url(self) -> str:
        return self.info["arm_url"]

    @property
    def admin_url(self) -> str:
        return self.info["admin_url"]

    @property
    def ca_cert(self) -> str:
        return self.info["ca_cert"]

    @property
    def tenant_id(self) -> str:
        return self.info["tenant_id"]

    @property
    def subscription_id(self) -> str:
        return self.info["subscription_id"]

    @property
    def eventgrid_topic_url(self) -> str:
        return self.info["eventgrid_topic_url"]

    @property
    def eventgrid_topic_key(self) -> str:
        return self.info["eventgrid_topic_key"]

    @property
    def identity_endpoint(self) -> str:
        """The App Service managed-identity endpoint (IDENTITY_ENDPOINT)."""
        return self.info["identity_endpoint"]

    def register_identity(self, principal_id: str, **more: Any) -> dict[str, str]:
        """Register an app's managed identity; returns identity_endpoint, identity_header, principal_id, client_id.
        `more`: client_id, user_assigned=[{principal_id, client_id, resource_id}]."""
        return self.admin("POST", "identities", {"principal_id": principal_id, **more}, expect=201)[1]

    @property
    def startup_seconds(self) -> float:
        return self.info["startup_seconds"]

    def _vault(self, name: str | None) -> dict[str, str]:
        vaults = self.info["vaults"]
        return vaults[name] if name else next(iter(vaults.values()))

    def vault_url(self, name: str | None = None) -> str:
        return self._vault(name)["url"]

    def vault_resource_id(self, name: str | None = None) -> str:
        return self._vault(name)["resource_id"]

    def key_scope(self, key_name: str, vault: str | None = None) -> str:
        return f"{self.vault_resource_id(vault)}/keys/{key_name}"

    # ---- Managed HSMs (emulators.managed_hsm) -----------------------------------------------------------------
    def hsm_url(self, name: str | None = None) -> str:
        hsms = self.info["managed_hsms"]
        return (hsms[name] if name else next(iter(hsms.values())))["url"]

    def hsm_resource_id(self, name: str | None = None) -> str:
        hsms = self.info["managed_hsms"]
        return (hsms[name] if name else next(iter(hsms.values())))["resource_id"]

    def hsm_initial_admins(self, *principal_ids: str, name: str | None = None) -> Any:
        """Azure's provisioning step: each principal holds Managed HSM Administrator at `/` at once."""
        hsm = name or next(iter(self.info["managed_hsms"]))
        return self.admin("POST", f"/managed-hsms/{hsm}/initial-admins", {"principal_ids": list(principal_ids)})

    def hsm_access_client(self, principal_id: str, name: str | None = None, **kwargs: Any) -> Any:
        from azure.keyvault.administration import KeyVaultAccessControlClient

        return KeyVaultAccessControlClient(
            self.hsm_url(name),
            self.credential(principal_id),
            verify_challenge_resource=False,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    def hsm_key_client(self, principal_id: str, name: str | None = None, **kwargs: Any) -> Any:
        from azure.keyvault.keys import KeyClient

        return KeyClient(
            self.hsm_url(name),
            self.credential(principal_id),
            verify_challenge_resource=False,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    # ---- SDK clients --------------------------------------------------------------------------------------
    def credential(self, principal_id: str) -> Any:
        from emulators.credential import EmulatorCredential

        return EmulatorCredential(principal_id, self.tenant_id)

    def key_client(self, principal_id: str, vault: str | None = None, **kwargs: Any) -> Any:
        from azure.keyvault.keys import KeyClient

        return KeyClient(
            self.vault_url(vault),
            self.credential(principal_id),
            verify_challenge_resource=False,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    def crypto_client(self, key: Any, principal_id: str, **kwargs: Any) -> Any:
        """`key` is a KeyVaultKey (local wrap) or a key id string (everything remote after a GET)."""
        from azure.keyvault.keys.crypto import CryptographyClient

        return CryptographyClient(
            key,
            self.credential(principal_id),
            verify_challenge_resource=False,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    def authorization_client(self, principal_id: str, **kwargs: Any) -> Any:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(
            self.credential(principal_id),
            self.subscription_id,
            base_url=self.arm_url,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    def keyvault_management_client(self, principal_id: str, **kwargs: Any) -> Any:
        """azure-mgmt-keyvault's client on the ARM emulator (vaults.get / update / update_access_policy)."""
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return KeyVaultManagementClient(
            self.credential(principal_id),
            self.subscription_id,
            base_url=self.arm_url,
            connection_verify=self.ca_cert,
            **kwargs,
        )

    # ---- admin API ----------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> tuple[int, Any]:
        """One admin call (`path` relative to /admin); returns (status, parsed JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.admin_url}/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        parsed = json.loads(raw) if raw else None
        if expect is not None and status != expect:
            raise EmulatorError(f"admin {method} {path}: expected {expect}, got {status}: {parsed}")
        return status, parsed

    def clock(self) -> dict[str, Any]:
        return self.admin("GET", "clock", expect=200)[1]

    def advance_clock(self, seconds: float | None = None, *, iso: str | None = None) -> dict[str, Any]:
        body = {"advance_iso": iso} if iso is not None else {"advance": seconds}
        return self.admin("POST", "clock", body, expect=200)[1]

    def set_clock(self, when: str) -> dict[str, Any]:
        return self.admin("POST", "clock", {"set": when}, expect=200)[1]

    def add_fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        """kind: 429 | 429-no-retry-after | 500 | 503 | reset; spec: operation, vault, rate or count, retry_after."""
        return self.admin("POST", "faults", {"kind": kind, **spec}, expect=201)[1]

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults", expect=204)

    def set_latency(self, ms: float, **spec: Any) -> dict[str, Any]:
        return self.admin("POST", "latency", {"ms": ms, **spec}, expect=200)[1]

    def set_throttle(self, **spec: Any) -> dict[str, Any]:
        """mode="real" | "off", or capacity=N, per_seconds=S."""
        return self.admin("POST", "throttle", spec, expect=200)[1]

    def counters(self) -> dict[str, Any]:
        return self.admin("GET", "counters", expect=200)[1]

    def reset(self) -> None:
        self.admin("POST", "reset", expect=200)

    # ---- RBAC propagation (emulators.rbac_propagation) ----------------------------------------------------
    def rbac_propagation(self) -> dict[str, Any]:
        """{max_seconds, pending, windows, minute_checks, unavailable}."""
        return self.admin("GET", "rbac/propagation", expect=200)[1]

    def set_rbac_propagation(self, max_seconds: float) -> dict[str, Any]:
        """The maximum delay drawn for each later assignment change (0 = immediate)."""
        return self.admin("PUT", "rbac/propagation", {"max_seconds": max_seconds}, expect=200)[1]

    def let_rbac_propagate(self) -> dict[str, Any]:
        """Wait, as a real deployment waits, until every pending assignment change has reached Key Vault: moves the
        emulated clock by the longest pending delay (consumers check at every emulated minute on the way)."""
        return self.admin("POST", "rbac/propagation/settle", expect=200)[1]

    # ---- lifetime -----------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait; SIGKILL only if it does not stop in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode


def start_emulators(
    tmp_dir: Path | str,
    config: dict[str, Any] | None = None,
    *,
    state_dir: Path | str | None = None,
    port_base: int = 0,
    launcher: list[str] | None = None,
    rbac_propagation_max_seconds: float | None = 0,
) -> Emulators:
    """Run `python -m emulators` (free ports by default) and wait for its ready line.

    `tmp_dir` receives the config file and the stderr log; `state_dir` (optional) makes state survive a restart.
    `launcher` replaces `[python, -m, emulators]`, e.g. to run it under a wrapper.
    `rbac_propagation_max_seconds`: 0 (the default here) applies role assignment changes at once, for unit-speed
    tests whose subject is not propagation; None keeps the emulators' own default (Azure's ~10 minutes); a config
    that names `rbac_propagation_max_seconds` itself wins.
    """
    if rbac_propagation_max_seconds is not None:
        config = {"rbac_propagation_max_seconds": rbac_propagation_max_seconds, **(config or {})}
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    command = list(launcher or [sys.executable, "-m", "emulators"])
    command += ["--port-base", str(port_base)]
    if config is not None:
        config_path = tmp / "emulators-config.json"
        config_path.write_text(json.dumps(config))
        command += ["--config", str(config_path)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    stderr_path = tmp / f"emulators-{time.monotonic_ns()}.stderr.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with stderr_path.open("wb") as stderr:
        process = spawn(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
    line = _read_ready_line(process, READY_TIMEOUT_SECONDS)
    if line is None:
        if process.poll() is None:
            process.kill()
        process.wait()
        raise EmulatorError(
            f"emulators did not become ready (exit {process.returncode}): {stderr_path.read_text(errors='replace')}"
        )
    info = json.loads(line)
    return Emulators(process, info, stderr_path, time.perf_counter() - started)


def _read_ready_line(process: subprocess.Popen, timeout: float) -> str | None:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buffer = b""
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return None
            buffer += chunk
            if b"\n" in buffer:
                first = buffer.split(b"\n", 1)[0].decode()
                return first if first.startswith("{") else None
        return None
    finally:
        selector.close()
