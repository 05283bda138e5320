"""The compliance report's access judgement over the emulators, with the role catalog's cache against without it.

    .venv/bin/python bench/access_judgement.py [--assignments 40] [--rounds 15]

Each key gets `--assignments` extra role assignments spread over six roles (built-in and custom). The baseline reads
a role definition for every assignment (a catalog with no time-to-live); the candidate is the app's catalog, which
keeps each definition for an hour, as a worker process does between sweeps. Runs alternate baseline/candidate so
machine noise hits both; the last line is a JSON summary with medians, ARM reads per report and the ratio
(candidate / baseline; below 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from azure.mgmt.authorization import AuthorizationManagementClient  # noqa: E402

from emulators.credential import EmulatorCredential  # noqa: E402
from functions.compliance.report import report_keys  # noqa: E402
from shared import roles  # noqa: E402
from shared.azure.access import AzureAccessControl  # noqa: E402
from shared.azure.keyvault import AzureKeyVault  # noqa: E402
from shared.azure.vaults import AzureVaults  # noqa: E402
from shared.clock import SystemClock  # noqa: E402
from shared.inventory import parse_inventory  # noqa: E402
from shared.roles.catalog import RoleCatalog  # noqa: E402

ROLES = [roles.CRYPTO_USER, roles.READER, roles.OWNER, roles.CONTRIBUTOR, roles.ARM_READER]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignments", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulators", "--state-dir", tmp],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            summary = run(json.loads(proc.stdout.readline()), args.assignments, args.rounds)
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(summary, sort_keys=True))


def run(ready: dict, extra: int, rounds: int) -> dict:
    ca, sub, tenant = ready["ca_cert"], ready["subscription_id"], ready["tenant_id"]
    vault = next(iter(ready["vaults"].values()))
    _, _, _, group, *_, vault_name = vault["resource_id"].strip("/").split("/")
    app = str(uuid.uuid4())
    credential = EmulatorCredential(app, tenant)
    access = AzureAccessControl(credential, sub, base_url=ready["arm_url"], connection_verify=ca)
    access.create_assignment(
        vault["resource_id"], roles.role_definition_id(sub, roles.CRYPTO_OFFICER), app, "ServicePrincipal"
    )
    keyvault = AzureKeyVault(credential, connection_verify=ca, verify_challenge_resource=False)
    vaults = AzureVaults(credential, base_url=ready["arm_url"], connection_verify=ca)
    inventory = parse_inventory(
        yaml.safe_load((ROOT / "inventory/reference.yaml").read_text()),
        variables={
            "CMK_VAULT_NAME": vault_name,
            "CMK_VAULT_URL": vault["url"],
            "CMK_SUBSCRIPTION_ID": sub,
            "CMK_RESOURCE_GROUP": group,
            "CMK_APP_PRINCIPAL_ID": app,
        },
    )
    custom = str(uuid.uuid4())
    with AuthorizationManagementClient(credential, sub, base_url=ready["arm_url"], connection_verify=ca) as client:
        client.role_definitions.create_or_update(
            f"/subscriptions/{sub}",
            custom,
            {
                "properties": {
                    "roleName": "bench wrapper",
                    "type": "CustomRole",
                    "description": "bench",
                    "assignableScopes": [f"/subscriptions/{sub}"],
                    "permissions": [{"dataActions": ["Microsoft.KeyVault/vaults/keys/wrap/action"]}],
                }
            },
        )
    clock = SystemClock()
    for key in inventory.keys:
        keyvault.create_key(
            key.ref, kty=key.kty, size=key.size, ops=key.ops, expires=key.rotation.expiry_for(clock.now())
        )
        keyvault.set_rotation_policy(key.ref, key.rotation.to_policy())
        access.create_assignment(
            key.scope, roles.role_definition_id(sub, key.role), key.identity.principal_id, "ServicePrincipal"
        )
        for i in range(extra):
            guid = custom if i % 6 == len(ROLES) else ROLES[i % 6].guid
            role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            access.create_assignment(key.scope, role_id, str(uuid.uuid4()), "ServicePrincipal")

    warm = RoleCatalog(access, clock)
    ports = {"inventory": inventory, "vault": keyvault, "access": access, "vault_settings": vaults, "clock": clock}
    report_keys(**ports, roles=warm)  # fills the app's catalog, as the first sweep of a worker does
    baseline, candidate, uncached_reads, cached_reads = [], [], [], []
    for _ in range(rounds):
        uncached = RoleCatalog(access, clock, ttl=timedelta(0))
        started = time.perf_counter()
        report = report_keys(**ports, roles=uncached)
        baseline.append(time.perf_counter() - started)
        uncached_reads.append(uncached.reads)
        before = warm.reads
        started = time.perf_counter()
        report_keys(**ports, roles=warm)
        candidate.append(time.perf_counter() - started)
        cached_reads.append(warm.reads - before)
    findings = len(report.findings)
    b, c = statistics.median(baseline), statistics.median(candidate)
    return {
        "bench": "access_judgement",
        "keys": len(inventory.keys),
        "assignments_per_key": extra + 1,
        "findings_per_report": findings,
        "rounds": rounds,
        "baseline_uncached_report_ms": round(b * 1000, 1),
        "candidate_cached_report_ms": round(c * 1000, 1),
        "ratio": round(c / b, 3),
        "role_reads_per_report_uncached": statistics.median(uncached_reads),
        "role_reads_per_report_cached": statistics.median(cached_reads),
    }


if __name__ == "__main__":
    main()
