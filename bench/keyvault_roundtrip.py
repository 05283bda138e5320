"""Key Vault round trips through the app's adapter, against a bare HTTPS client, side by side on the emulator.

    .venv/bin/python bench/keyvault_roundtrip.py [--calls 200]

What it shows: the adapter's unwrap costs about what one keep-alive HTTPS round trip costs (the SDK adds little), and
its local wrap costs a fraction of a remote one. Runs alternate A/B so machine noise hits both; the last line printed
is a JSON summary with medians and ratios (candidate / baseline).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulators.credential import EmulatorCredential  # noqa: E402
from shared import roles  # noqa: E402
from shared.azure.access import AzureAccessControl  # noqa: E402
from shared.azure.keyvault import AzureKeyVault  # noqa: E402
from shared.model import KeyRef  # noqa: E402


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def start_emulators(state: Path) -> tuple[subprocess.Popen, dict, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        # Round-trip latency, not RBAC propagation: the grant below applies at once.
        [sys.executable, "-m", "emulators", "--state-dir", str(state), "--rbac-propagation-max-seconds", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready = json.loads(proc.stdout.readline())
    return proc, ready, time.perf_counter() - started


class RawVault:
    """The baseline: one kept-alive HTTPS connection, hand-built requests, no SDK."""

    def __init__(self, vault_url: str, token: str, ca: str) -> None:
        parts = urlsplit(vault_url)
        self.conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=ssl.create_default_context(cafile=ca)
        )
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict) -> dict:
        self.conn.request("POST", f"{path}?api-version=7.6", json.dumps(body), self.headers)
        resp = self.conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 200, data
        return data


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        startups = []
        for i in range(3):
            proc, ready, seconds = start_emulators(Path(tmp) / f"s{i}")
            startups.append(seconds)
            if i < 2:
                proc.terminate()
                proc.wait()
        try:
            ca, vault_url = ready["ca_cert"], next(iter(ready["vaults"].values()))["url"]
            vault_id = next(iter(ready["vaults"].values()))["resource_id"]
            principal = str(uuid.uuid4())
            credential = EmulatorCredential(principal, ready["tenant_id"])
            access = AzureAccessControl(
                credential, ready["subscription_id"], base_url=ready["arm_url"], connection_verify=ca
            )
            access.create_assignment(
                vault_id,
                roles.role_definition_id(ready["subscription_id"], roles.CRYPTO_OFFICER),
                principal,
                "ServicePrincipal",
            )
            adapter = AzureKeyVault(credential, connection_verify=ca, verify_challenge_resource=False)
            key = KeyRef(vault_url, "bench-key")
            version = adapter.create_key(key, kty="RSA-HSM", size=2048, ops=("wrapKey", "unwrapKey"))
            token = credential.get_token("https://vault.azure.net/.default").token
            raw = RawVault(vault_url, token, ca)
            dek = os.urandom(32)
            wrapped = adapter.wrap_key(key, version.version, dek)
            path = f"/keys/{key.name}/{version.version}"
            body = {"alg": "RSA-OAEP-256", "value": b64url(wrapped.wrapped)}
            adapter.unwrap_key(version.key_id, wrapped.wrapped)  # warm both connections
            raw.post(f"{path}/unwrapkey", body)

            timings: dict[str, list[float]] = {"adapter_unwrap": [], "raw_unwrap": [], "local_wrap": [], "raw_wrap": []}
            for _ in range(args.calls):
                for name, call in (
                    ("adapter_unwrap", lambda: adapter.unwrap_key(version.key_id, wrapped.wrapped)),
                    ("raw_unwrap", lambda: raw.post(f"{path}/unwrapkey", body)),
                    ("local_wrap", lambda: adapter.wrap_key(key, version.version, dek)),
                    ("raw_wrap", lambda: raw.post(f"{path}/wrapkey", {"alg": "RSA-OAEP-256", "value": b64url(dek)})),
                ):
                    t = time.perf_counter()
                    call()
                    timings[name].append(time.perf_counter() - t)
        finally:
            proc.terminate()
            proc.wait()
    med = {name: median_ms(samples) for name, samples in timings.items()}
    summary = {
        "bench": "keyvault_roundtrip",
        "calls": args.calls,
        "emulator_startup_s": round(statistics.median(startups), 3),
        "unwrap_ms": {"adapter": med["adapter_unwrap"], "raw_https": med["raw_unwrap"]},
        "unwrap_ratio_adapter_vs_raw": round(med["adapter_unwrap"] / med["raw_unwrap"], 2),
        "wrap_ms": {"adapter_local": med["local_wrap"], "raw_https_remote": med["raw_wrap"]},
        "wrap_ratio_local_vs_remote": round(med["local_wrap"] / med["raw_wrap"], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
