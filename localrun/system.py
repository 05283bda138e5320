"""The whole local system in one object: Azurite, the emulators and the devhost serving function_app.py, seeded.

`scripts/run` uses it with fixed, documented ports; the end-to-end tests use it with free ports (port 0), once per
test session. Both go through exactly the same start-up and seeding code.

Storage comes two ways, as in Azure. `storage="connection-string"` gives the app AzureWebJobsStorage (Azurite's
published development key, over HTTP). `storage="identity"` gives it no connection string at all: Azurite serves
HTTPS with the emulators' certificate and checks bearer tokens (`--oauth basic`), and the app and the devhost reach it
through `AzureWebJobsStorage__credential=managedidentity`, `__clientId` (the app's identity on the emulators'
managed-identity endpoint) and the service URIs, as a Flex Consumption app with shared keys disabled does. Azurite
then starts once the emulators have made their certificate.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from localrun.cloud import Cloud, Identities, seed, subscribe_functions
from localrun.processes import Child, ProcessGroup, stop_leftovers

ROOT = Path(__file__).resolve().parent.parent
RBAC_PROPAGATION_MAX_SECONDS = (
    600  # emulated seconds; the app runs with CMK_RBAC_PROPAGATION_SECONDS=600 (localrun/cloud.py)
)
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development account key (Microsoft's documentation; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# What would make DefaultAzureCredential choose a credential other than the App Service managed identity.
OTHER_CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
)
_AZURITE_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://[^:]+:(\d+)")
STORAGE_MODES = ("connection-string", "identity")


@dataclass(frozen=True)
class Ports:
    """0 means any free port. The defaults are what the README documents (and what Core Tools users expect)."""

    devhost: int = 7071
    emulators: int = 8440  # ARM + admin, then the Event Grid topic (+1), then the vault (+2)
    azurite_blob: int = 10000
    azurite_queue: int = 10001
    azurite_table: int = 10002

    @classmethod
    def free(cls) -> Ports:
        return cls(0, 0, 0, 0, 0)


@dataclass
class LocalSystem:
    state_dir: Path
    ports: Ports = field(default_factory=Ports)
    echo: IO[str] | None = None
    extra_settings: dict[str, str] = field(default_factory=dict)
    keep_state: bool = False
    host_json: Path = ROOT / "host.json"
    hsm: bool = False  # the reference deployment on an emulated Managed HSM (localrun.hsm)
    storage: str = "connection-string"  # or "identity": no connection string, OAuth over HTTPS (see the module doc)
    # The inventory the run seeds and the app reads; the reference inventory when None. A CMK_INVENTORY_PATH in
    # extra_settings changes only what the app reads (a test of a broken inventory seeds the reference).
    inventory: Path | None = None

    group: ProcessGroup | None = None
    cloud: Cloud | None = None
    devhost: dict[str, Any] | None = None
    storage_connection: str | None = None
    storage_endpoints: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def info_file(self) -> Path:
        return self.state_dir / "cloud.json"

    @property
    def identity_storage(self) -> bool:
        return self.storage == "identity"

    def up(self) -> LocalSystem:
        if self.storage not in STORAGE_MODES:
            raise ValueError(f"storage: one of {', '.join(STORAGE_MODES)} (got {self.storage!r})")
        started = time.perf_counter()
        leftovers = stop_leftovers(self.pid_file)
        if leftovers:
            self._say(f"stopped what an earlier run left running: {', '.join(leftovers)}")
        if not self.keep_state:
            for sub in ("emulators", "azurite"):
                shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # keys, settings and logs of the run: this user's only
        self.group = ProcessGroup(self.pid_file, self.state_dir / "logs", echo=self.echo)
        try:
            azurite = None if self.identity_storage else self._start_azurite()
            emulators = self._start_emulators()
            ready = json.loads(emulators.wait_for(lambda line: line.startswith('{"ready"'), 30))
            if azurite is None:  # identity storage: HTTPS with the emulators' certificate, which exists only now
                azurite = self._start_azurite(Path(ready["ca_cert"]))
            self.storage_connection = self._azurite_ready(azurite)
            self.timings["emulators_ready"] = time.perf_counter() - started
            identities = Identities.load_or_create(self.state_dir / "identities.json")
            self.cloud = Cloud(ready, identities, resource_group="rg-cmk-reference", inventory_path=self.inventory)
            seed(self.cloud)
            self.cloud = replace(self.cloud, app_identity=self.cloud.register_app_identity())
            self.timings["seeded"] = time.perf_counter() - started
            self._start_devhost()
            self.timings["devhost_ready"] = time.perf_counter() - started
            subscribe_functions(self.cloud, self.devhost["url"], self.devhost["eventgrid_key"])
            self.timings["serving"] = time.perf_counter() - started
            self._write_info()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None

    def __enter__(self) -> LocalSystem:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- children ---------------------------------------------------------------------------------------------
    def _start_azurite(self, cert: Path | None = None) -> Child:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError("Azurite is not installed: run scripts/setup (npm install) first")
        p = self.ports
        argv = [
            str(binary),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost", "127.0.0.1", "--blobPort", str(p.azurite_blob),
            "--queueHost", "127.0.0.1", "--queuePort", str(p.azurite_queue),
            "--tableHost", "127.0.0.1", "--tablePort", str(p.azurite_table),
        ]  # fmt: skip
        if cert is not None:  # the emulators' key sits beside their certificate (emulators.core.make_self_signed_cert)
            argv += ["--cert", str(cert), "--key", str(cert.with_name("emulators-key.pem")), "--oauth", "basic"]
        if self.keep_state:
            argv += ["--location", str(self.state_dir / "azurite")]
        else:
            argv += ["--inMemoryPersistence"]
        workdir = self.state_dir / "azurite-work"
        workdir.mkdir(parents=True, exist_ok=True)
        return self.group.start("azurite", argv, env=dict(os.environ), cwd=workdir)

    def _azurite_ready(self, azurite: Child) -> str:
        ports: dict[str, str] = {}

        def listening(line: str) -> bool:
            m = _AZURITE_LISTENING.search(line)
            if m:
                ports[m.group(1).lower()] = m.group(2)
            return len(ports) == 3

        azurite.wait_for(listening, 30)
        scheme = "https" if self.identity_storage else "http"
        self.storage_endpoints = {
            name: f"{scheme}://127.0.0.1:{port}/{AZURITE_ACCOUNT}" for name, port in sorted(ports.items())
        }
        # Azurite takes its development key over HTTPS too: what tests and helpers read storage with
        return (
            f"DefaultEndpointsProtocol={scheme};AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.storage_endpoints['blob']};"
            f"QueueEndpoint={self.storage_endpoints['queue']};"
            f"TableEndpoint={self.storage_endpoints['table']};"
        )

    def storage_settings(self) -> dict[str, str]:
        """AzureWebJobsStorage for the app and the devhost: the connection string, or the identity-based settings."""
        if not self.identity_storage:
            return {"AzureWebJobsStorage": self.storage_connection or ""}
        endpoints = self.storage_endpoints
        return {
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": (self.cloud.app_identity or {}).get("client_id", ""),
            "AzureWebJobsStorage__blobServiceUri": endpoints["blob"],
            "AzureWebJobsStorage__queueServiceUri": endpoints["queue"],
            "AzureWebJobsStorage__tableServiceUri": endpoints["table"],
            "DEVHOST_CA_BUNDLE": self.cloud.ca_cert,  # the host's side of trusting the local HTTPS Azurite
        }

    def _start_emulators(self) -> Child:
        argv = [sys.executable, "-m", "emulators", "--port-base", str(self.ports.emulators)]
        argv += ["--state-dir", str(self.state_dir / "emulators")]
        # As in Azure: a role assignment change reaches Key Vault up to 10 (emulated) minutes after ARM lists it.
        argv += ["--rbac-propagation-max-seconds", str(RBAC_PROPAGATION_MAX_SECONDS)]
        if self.hsm:
            from localrun.hsm import emulator_config

            config = self.state_dir / "emulators-config.json"
            config.write_text(json.dumps(emulator_config()))
            argv += ["--config", str(config)]
        return self.group.start("emulators", argv, env=dict(os.environ), cwd=ROOT)

    def _devhost_keys(self) -> dict[str, str]:
        path = self.state_dir / "function-keys.json"
        try:
            keys = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            keys = {name: secrets.token_urlsafe(24) for name in ("function", "master", "eventgrid")}
            path.write_text(json.dumps(keys))
            path.chmod(0o600)
        return keys

    def app_settings(self) -> dict[str, str]:
        keys = self._devhost_keys()
        settings = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            **self.storage_settings(),
            **self.cloud.app_settings(),
            "DEVHOST_FUNCTION_KEY": keys["function"],
            "DEVHOST_MASTER_KEY": keys["master"],
            "DEVHOST_EVENTGRID_KEY": keys["eventgrid"],
        }
        settings.update(self.extra_settings)
        return settings

    def _start_devhost(self) -> None:
        keys = self._devhost_keys()
        ready = self.start_devhost("devhost", self.ports.devhost)
        # devhost prints no key it was given; this run made them, so it knows them
        self.devhost = {
            **ready,
            "function_key": keys["function"],
            "master_key": keys["master"],
            "eventgrid_key": keys["eventgrid"],
        }

    def start_devhost(self, name: str, port: int) -> dict[str, Any]:
        """Start a devhost serving the app with this run's settings; a second one (another name, port 0 for any)
        is a second instance of the same function app, as Azure Functions' scale-out would run it."""
        settings_path = self.state_dir / "local.settings.json"
        settings_path.write_text(json.dumps({"IsEncrypted": False, "Values": self.app_settings()}, indent=2))
        settings_path.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if k not in self.app_settings()}
        # This machine may export CA bundle variables for its own proxy; the app must trust only what it is told.
        # Nor may a credential variable of this machine put DefaultAzureCredential on another credential before
        # the managed identity the emulators serve.
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", *OTHER_CREDENTIAL_VARIABLES):
            env.pop(variable, None)
        argv = [
            sys.executable, "-m", "devhost", "--app", "function_app:app",
            "--port", str(port), "--settings", str(settings_path), "--host-json", str(self.host_json),
        ]  # fmt: skip
        self.group.hide(*self._devhost_keys().values())
        child = self.group.start(name, argv, env=env, cwd=ROOT, echo=True)
        return json.loads(child.wait_for(lambda line: line.startswith('{"devhost"'), 60))

    def devhost_child(self, name: str = "devhost") -> Child:
        return next(c for c in self.group.children if c.name == name)

    def kill_devhost(self, name: str = "devhost") -> None:
        """SIGKILL the devhost and whatever it started (a crashed Functions instance: no clean shutdown, messages in
        flight left to their visibility timeout); its log stays, and `restart_devhost` brings it back."""
        child = self.devhost_child(name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait(10)
        self.group.children.remove(child)

    def restart_devhost(self, name: str = "devhost") -> dict[str, Any]:
        """Start the (killed) devhost again on its old port, so Event Grid's subscriptions reach it unchanged."""
        port = int(self.devhost["url"].rsplit(":", 1)[1].split("/")[0]) if name == "devhost" else 0
        ready = self.start_devhost(name, port)
        if name == "devhost":
            self.devhost = {**self.devhost, **ready}
        return ready

    def _write_info(self) -> None:
        info = {
            "emulators": self.cloud.ready,
            "identities": asdict(self.cloud.identities),
            "devhost": self.devhost,
            "storage_connection": self.storage_connection,
            "storage": self.storage,
            "resource_group": self.cloud.resource_group,
            "app_identity": self.cloud.app_identity,
            "inventory_path": str(self.cloud.inventory_path) if self.cloud.inventory_path else None,
        }
        self.info_file.write_text(json.dumps(info, indent=2))
        self.info_file.chmod(0o600)

    def _say(self, text: str) -> None:
        if self.echo is None:
            return
        try:
            self.echo.write(text + "\n")
            self.echo.flush()
        except (OSError, ValueError):
            self.echo = None  # the reader is gone (a broken pipe): say nothing more rather than stop starting up


def load_running(state_dir: Path) -> Cloud:
    """The cloud a running `scripts/run` wrote down, for the helper commands (grant, revoke, clock)."""
    try:
        info = json.loads((state_dir / "cloud.json").read_text())
    except FileNotFoundError:
        raise SystemExit(f"no local run found in {state_dir}: start one with scripts/run") from None
    inventory = info.get("inventory_path")
    return Cloud(
        info["emulators"], Identities(**info["identities"]), info["resource_group"], info.get("app_identity"),
        Path(inventory) if inventory else None,
    )  # fmt: skip
