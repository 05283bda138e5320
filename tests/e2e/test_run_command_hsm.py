"""`scripts/run --hsm`, started as a user starts it, and its printed guide followed literally: the same steps work on
an emulated Managed HSM, with the sweep doing what Key Vault's events do on a vault."""

from __future__ import annotations

import json
import time

import pytest

from localrun.processes import ProcessGroup
from tests.e2e.test_run_command import ROOT, Run, shell

pytestmark = pytest.mark.e2e


class HsmRun(Run):
    def __init__(self, state_dir) -> None:  # as Run's, with --hsm
        import os

        from localrun.processes import END_CHILDREN_WITH_PARENT

        ignored = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", END_CHILDREN_WITH_PARENT)
        env = {k: v for k, v in os.environ.items() if k not in ignored}
        group = ProcessGroup(state_dir.parent / f"{state_dir.name}-test-pids.json", state_dir.parent / "test-logs")
        argv = ["scripts/run", "--hsm", "--free-ports", "--state-dir", str(state_dir)]
        self.child = group.start("run", argv, env=env, cwd=ROOT)
        self.proc = self.child.proc
        self.lines = self.child.lines


def test_following_the_printed_guide_on_a_managed_hsm(tmp_path):
    run = HsmRun(tmp_path / "run")
    try:
        steps = run.steps()
        keys, clock, grant, keys_again, sweep, policy, window, keys_rotated, audit, rotate = steps[:10]
        plan, revoke, settle, watch, restore, settle_again = steps[10:]
        assert any("Managed HSM" in line and "local RBAC, no events" in line for line in run.lines)

        def swept() -> None:
            mark = len(run.lines)
            assert "202 Accepted" in shell(sweep)
            run.wait_for(lambda line: "Executed 'Functions.compliance_sweep' (Succeeded" in line, after=mark)

        # 1. compliant as seeded; the HSM's security officer is a named break-glass role manager (info)
        report = json.loads(shell(keys))
        assert report["summary"] == {"keys": 2, "compliant": 2, "findings": {"info": 2}}

        # 2. 91 days: the HSM's policy rotates both keys, no event says so; the sweep (step 4) sees the new versions
        mark = len(run.lines)
        assert "now" in json.loads(shell(clock))
        swept()
        assert not [line for line in run.lines[mark:] if "keyvault_events:" in line]
        later = json.loads(shell(keys))
        assert {k["version"] for k in later["keys"]}.isdisjoint({k["version"] for k in report["keys"]})
        assert later["summary"]["compliant"] == 2

        # 3. drift in local RBAC, found and removed by the sweep (enforce mode)
        assert json.loads(shell(grant))["granted"] == "Managed HSM Crypto User"
        mark = len(run.lines)
        swept()
        run.wait_for(lambda line: "deliver_alerts: published" in line and "Access.Remediated" in line, after=mark)
        assert json.loads(shell(keys_again))["summary"]["compliant"] == 2

        # 5. the app rotates: no Rotate action in the HSM, the clock in the near-expiry window, the sweep rotates once
        before = {k["name"]: k["version"] for k in json.loads(shell(keys))["keys"]}
        assert [a["action"] for a in json.loads(shell(policy))["lifetime_actions"]] == ["Notify"]
        assert "now" in json.loads(shell(window))
        swept()
        after = {k["name"]: k["version"] for k in json.loads(shell(keys_rotated))["keys"]}
        assert after["aks-encryption-key"] != before["aks-encryption-key"]
        records = json.loads(shell(audit))["records"]
        assert after["aks-encryption-key"] in [r["to_version"] for r in records if r["outcome"] == "rotated"]
        assert shell(rotate).startswith("HTTP/1.1 201")
        assert shell(rotate).startswith("HTTP/1.1 200")

        # 6. revoke on local RBAC, verified after propagation, restored
        planned = json.loads(shell(plan))
        assert planned["dry_run"] is True and len(planned["plan"]["remove"]) == 1
        executed = shell(revoke)
        assert executed.startswith("HTTP/1.1 202"), executed
        revocation_id = json.loads(executed.split("\n\n", 1)[1])["id"]
        shell(settle)
        deadline = time.monotonic() + 60
        while (state_now := json.loads(shell(watch, REVOCATION_ID=revocation_id))["state"]) != "verified":
            assert state_now == "executed" and time.monotonic() < deadline, state_now
            time.sleep(0.5)
        assert shell(restore, REVOCATION_ID=revocation_id).startswith("HTTP/1.1 202")
        assert json.loads(shell(watch, REVOCATION_ID=revocation_id))["state"] == "restored"
        shell(settle_again)
    finally:
        code = run.stop()
    assert code == 0
