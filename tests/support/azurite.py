"""Starts Azurite (Microsoft's storage emulator, from node_modules) for a test session.

    azurite = start_azurite(tmp_dir)
    ...azurite.connection_string...
    azurite.stop()

Azurite binds port 0 for blob, queue and table and prints the ports it got, so there is no race for free ports; the
starter reads them from its output. It runs in memory (`--inMemoryPersistence`), with `tmp_dir` as its working
directory (where any stray file it writes lands), and is stopped by `stop()`.

    azurite = start_azurite(tmp_dir, oauth=True)
    ...QueueClient(azurite.queue_endpoint, name, credential=token_credential, connection_verify=azurite.ca_cert)...

`oauth=True` serves HTTPS (a fresh self-signed certificate, `ca_cert`) with `--oauth basic`: Azurite then accepts
bearer tokens as Azure Storage does (issuer, audience, lifetime; not the signature), which is how identity-based
storage (`AzureWebJobsStorage__*`, no connection string) is exercised here. Shared key still works alongside.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from localrun.processes import spawn

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT_NAME = "devstoreaccount1"
# Azurite's published, well-known development account key (not a secret: it is in Microsoft's documentation)
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0

_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://[^:]+:(\d+)")


class AzuriteStartError(RuntimeError):
    """Azurite did not come up; the message carries the tail of its output."""


@dataclass
class Azurite:
    """A running Azurite: its ports, the connection string for all three services, and `stop()`."""

    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[str] = field(repr=False)
    ca_cert: str | None = None  # with oauth: the certificate Azurite serves, to trust (it is its own CA)

    @property
    def scheme(self) -> str:
        return "https" if self.ca_cert else "http"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def stop(self) -> None:
        """Stops Azurite (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_azurite(tmp_dir: Path, *, oauth: bool = False, timeout: float = START_TIMEOUT_SECONDS) -> Azurite:
    """Starts Azurite on free ports and returns once all three services listen (HTTPS with OAuth when `oauth`)."""
    if not AZURITE_BIN.exists():
        raise AzuriteStartError(f"{AZURITE_BIN} not found: run `npm ci` in {REPO_ROOT} (scripts/setup does)")
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tls: list[str] = []
    ca_cert: str | None = None
    if oauth:
        from emulators.core import make_self_signed_cert

        cert = make_self_signed_cert(tmp_dir / "tls")
        tls = ["--cert", str(cert.cert_path), "--key", str(cert.key_path), "--oauth", "basic"]
        ca_cert = str(cert.cert_path)
    process = spawn(
        [
            str(AZURITE_BIN),
            *tls,
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost",
            HOST,
            "--queueHost",
            HOST,
            "--tableHost",
            HOST,
            "--blobPort",
            "0",
            "--queuePort",
            "0",
            "--tablePort",
            "0",
        ],
        cwd=tmp_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ports: dict[str, int] = {}
    output: list[str] = []
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining after start so Azurite never blocks on a full pipe
            output.append(line.rstrip())
            found = _LISTENING.search(line)
            if found:
                ports[found.group(1)] = int(found.group(2))
                if len(ports) == 3:
                    ready.set()
        ready.set()  # the process ended: let the waiter see it

    threading.Thread(target=read_output, name="azurite-output", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(timeout=0.1):
        if time.monotonic() > deadline:
            break
    if len(ports) != 3:
        process.kill()
        process.wait(timeout=5)
        tail = "\n".join(output[-20:])
        raise AzuriteStartError(f"Azurite did not start within {timeout:.0f}s; its output:\n{tail}")
    return Azurite(
        blob_port=ports["Blob"],
        queue_port=ports["Queue"],
        table_port=ports["Table"],
        process=process,
        ca_cert=ca_cert,
    )
