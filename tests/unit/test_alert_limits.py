"""H5: an alert fits the queue whatever it reports, the follow-up check leaves before the alert that reports its act,
and an alert that cannot be sent never undoes (or hides) the act it reports."""

from __future__ import annotations

import dataclasses
import json
import uuid

from functions.revocation import ACCESS_REVOKED_ALERT, revoke
from functions.sweep import DRIFT_ALERT_TYPE, run_sweep
from shared import roles
from shared.alerts import MAX_ALERT_JSON_BYTES, OutboxAlerts, alert_to_message
from shared.errors import ServiceUnavailable
from shared.http.commands import RevokeCommand
from shared.inventory import Mode
from shared.model import Alert, Severity
from tests.fakes.outbound import FakeAlerts, FakeWorkQueue

MYSQL = "mysql-encryption-key"


class OrderedQueue(FakeWorkQueue):
    """A queue that also writes what it was sent into one log shared with other queues, to see the order."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self._name, self._log = name, log

    def send(self, message: dict, *, delay_seconds: int = 0) -> None:
        super().send(message, delay_seconds=delay_seconds)
        self._log.append(self._name)


def _size(message: dict) -> int:
    return len(json.dumps(message).encode("utf-8"))


def _revoke_ports(world, checks, alerts) -> dict:
    return {
        "inventory": world.inventory,
        "access": world.access,
        "roles": world.ports()["roles"],
        "vault": world.vault,
        "vault_settings": world.vaults,
        "consumers": world.consumers,
        "dekstore": world.dekstore,
        "revocations": world.revocations,
        "audit": world.audit,
        "alerts": alerts,
        "clock": world.clock,
        "revocation_checks": checks,
        "follow_up_delay": 600,
    }


def _group_grants(world, n: int) -> None:
    scope = world.key(MYSQL).scope
    for _ in range(n):
        world.access.create_assignment(scope, world.role_id(roles.CRYPTO_USER), str(uuid.uuid4()), "Group")


def test_seventy_extra_grants_make_a_drift_alert_that_fits_the_queue_with_counts_and_no_list(world):
    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)
    for managed in world.inventory.keys:
        for _ in range(36):
            world.grant(managed.scope, str(uuid.uuid4()), roles.CRYPTO_USER)
    outbox = FakeWorkQueue()
    deps = {k: v for k, v in world.sweep_ports().items() if k != "alerts"}
    outcome = run_sweep(**deps, alerts=OutboxAlerts(outbox))
    extra = [f for f in outcome.report.findings if f.code == "AccessExtra"]
    assert len(extra) >= 70
    sent = [m.message for m in outbox.messages if m.message["type"] == DRIFT_ALERT_TYPE]
    assert len(sent) == 1 and _size(sent[0]) <= MAX_ALERT_JSON_BYTES
    assert sent[0]["data"]["counts"]["AccessExtra"] == len(extra)
    assert "findings" not in sent[0]["data"]


def test_a_sweep_whose_alert_fails_still_reports_its_findings(world):
    world.inventory = dataclasses.replace(world.inventory, mode=Mode.AUDIT)
    world.grant(world.key(MYSQL).scope, str(uuid.uuid4()), roles.CRYPTO_USER)

    class DriftRefused(FakeAlerts):
        def publish(self, alert: Alert) -> None:
            if alert.type == DRIFT_ALERT_TYPE:
                raise ServiceUnavailable("the outbox queue is unreachable")
            super().publish(alert)

    deps = {k: v for k, v in world.sweep_ports().items() if k != "alerts"}
    outcome = run_sweep(**deps, alerts=DriftRefused())
    assert any(f.code == "AccessExtra" for f in outcome.report.findings)
    assert any(r.action == "alert" and r.outcome == "failed" for r in world.audit.all())


def test_a_revocation_with_a_hundred_group_grants_alerts_within_the_cap_and_is_still_checked(world):
    _group_grants(world, 100)
    log: list[str] = []
    checks, outbox = OrderedQueue("check", log), OrderedQueue("alert", log)
    command = RevokeCommand(key=MYSQL, action="revoke-access", reason="drill", caller="alice", service="mysql")
    outcome = revoke(dataclasses.replace(command, dry_run=False), **_revoke_ports(world, checks, OutboxAlerts(outbox)))
    assert outcome.status == "executed"
    assert len(outcome.revocation.plan["groups"]) == 100  # the ledger keeps the plan whole
    assert [m.message["revocation_id"] for m in checks.messages] == [outcome.revocation.revocation_id]
    alert = next(m.message for m in outbox.messages if m.message["type"] == ACCESS_REVOKED_ALERT)
    assert _size(alert) <= MAX_ALERT_JSON_BYTES
    assert alert["data"]["audit_record_id"] == outcome.revocation.audit_record_id
    assert alert["data"]["counts"]["groups"] == 100 and "plan" not in alert["data"]
    assert log.index("check") < log.index("alert")  # the follow-up leaves before the alert that reports the act


def test_a_revocation_whose_alert_fails_stays_executed_is_checked_and_the_failure_is_audited(world):
    world.alerts.fail_next(1)
    checks = FakeWorkQueue()
    command = RevokeCommand(key=MYSQL, action="revoke-access", reason="drill", caller="alice", service="mysql")
    outcome = revoke(dataclasses.replace(command, dry_run=False), **_revoke_ports(world, checks, world.alerts))
    assert outcome.status == "executed" and outcome.error is None
    assert len(checks.messages) == 1
    failed = [r for r in world.audit.all() if r.action == "alert" and r.outcome == "failed"]
    assert len(failed) == 1 and failed[0].detail["type"] == ACCESS_REVOKED_ALERT


def test_the_outbox_caps_any_alert_at_the_hard_limit_keeping_its_summary():
    huge = Alert(
        "CmkGuardian.Test", "/x", Severity.HIGH, "m" * 40_000, {"audit_record_id": "abc", "blob": "x" * 90_000}
    )
    queue = FakeWorkQueue()
    OutboxAlerts(queue).publish(huge)
    sent = queue.messages[0].message
    assert _size(sent) <= MAX_ALERT_JSON_BYTES
    assert sent["data"]["audit_record_id"] == "abc" and sent["data"]["truncated"] is True
    assert sent["type"] == "CmkGuardian.Test" and sent["severity"] == "high"
    assert _size(alert_to_message(Alert("t", "/s", Severity.INFO, "small", {"a": 1}))) < 200
