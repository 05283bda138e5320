"""The periodic sweep, the source of truth: rotate what is due, give keys the inventory's rotation policy (enforce
mode), finish moving what depends on each key and retire what nothing needs, then report compliance on the state
that leaves, alerting on high and critical drift.

Its Key Vault reads go through one snapshot, so the rotation step and the report share them: a sweep with nothing
due reads each key and its policy once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.access.reconcile import RBAC_PROPAGATION, ReconcileOutcome, reconcile_key
from functions.compliance.report import ComplianceReport, report_keys
from functions.revocation.watch import watch_revocations
from functions.rotation.rotate import RotationOutcome
from functions.sweep_dependents import DependentsOutcome, tend_dependents
from functions.sweep_rotation import PolicyChange, rotate_due_keys, sync_rotation_policies
from shared.alerts import publish_or_record
from shared.arm_ids import last_segment
from shared.audit import AuditRecord
from shared.coordination.pacing import CreationPacer
from shared.envelope import deks_per_kek_version
from shared.errors import CmkError
from shared.keyvault_snapshot import SnapshotKeyVault
from shared.model import Alert, ConsumerKind, Severity
from shared.ports import (
    AccessControl,
    Alerts,
    AuditTrail,
    Claims,
    Clock,
    Consumers,
    DekStore,
    KeyVault,
    Revocations,
    RoleDefinitions,
    ShardKeyStore,
    Vaults,
    WorkQueue,
)
from shared.telemetry import NO_TELEMETRY, Telemetry, names

ALERT_ON = (Severity.HIGH, Severity.CRITICAL)
MAX_KEYS_NAMED = 10  # past this many keys the alert's subject and message count them rather than name them
DRIFT_ALERT_TYPE = "CmkGuardian.Compliance.Drift"


@dataclass(frozen=True)
class SweepOutcome:
    report: ComplianceReport
    alert: Alert | None
    rotations: tuple[RotationOutcome, ...] = field(default=())
    policies: tuple[PolicyChange, ...] = field(default=())
    dependents: tuple[DependentsOutcome, ...] = field(default=())
    access: tuple[ReconcileOutcome, ...] = field(default=())
    not_in_force: tuple[str, ...] = field(default=())  # revocations whose access came back (alerted)

    def actions(self) -> list[str]:
        """What the sweep did or decided beyond reporting, one line each (the trigger logs them): a quiet sweep
        has none, a sweep that rotated, re-set a policy, resumed a re-wrap or remediated access says so."""
        did = [f"rotation {r.key}: {r.status.value} ({r.reason})" for r in self.rotations]
        did += [f"rotation policy {p.key}: {p.status} ({p.reason})" for p in self.policies]
        for d in self.dependents:
            did += [f"re-wrap {d.key}: resumed {d.resumed_shards} shard(s)"] if d.resumed_shards else []
            did += [f"consumer move {d.key}: queued for {resource}" for resource in d.moved]
            did += [f"retirement {d.key}/{r.version}: {'allowed' if r.allowed else 'kept'}" for r in d.retirements]
        did += [f"access {a.key}: {a.status}" for a in self.access if a.status not in ("compliant", "unreadable")]
        return did


def run_sweep(
    *,
    inventory: Any,
    vault: KeyVault,
    access: AccessControl,
    roles: RoleDefinitions,
    vault_settings: Vaults,
    clock: Clock,
    alerts: Alerts,
    claims: Claims,
    audit: AuditTrail,
    pacer: CreationPacer,
    dekstore: DekStore,
    rewrap_queue: WorkQueue,
    move_queue: WorkQueue,
    consumers: Consumers,
    revocations: Revocations,
    rbac_propagation: timedelta = RBAC_PROPAGATION,
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> SweepOutcome:
    snapshot = SnapshotKeyVault(vault)
    rotations = rotate_due_keys(
        inventory=inventory, vault=snapshot, claims=claims, audit=audit, alerts=alerts, clock=clock, pacer=pacer,
        telemetry=telemetry,
    )  # fmt: skip
    policies = sync_rotation_policies(
        inventory=inventory, vault=snapshot, audit=audit, clock=clock, revocations=revocations
    )
    dependents = tend_dependents(
        inventory=inventory, vault=snapshot, dekstore=dekstore, rewrap_queue=rewrap_queue, move_queue=move_queue,
        consumers=consumers, claims=claims, audit=audit, alerts=alerts, clock=clock, telemetry=telemetry,
        shardkeys=shardkeys,
    )  # fmt: skip
    access_outcomes = [
        reconcile_key(
            managed, trigger="timer", inventory=inventory, access=access, roles=roles, vault=snapshot,
            vault_settings=vault_settings, revocations=revocations, audit=audit, alerts=alerts, clock=clock,
            all_versions=False,  # the current version's ops (already read); events check every version
            consumers=consumers, rbac_propagation=rbac_propagation,  # the identity each consumer really uses
            claims=claims,  # first sight of a grant that carries no creation time (Managed HSM)
            telemetry=telemetry,
        )
        for managed in inventory.keys
    ]  # fmt: skip
    report = report_keys(
        inventory=inventory,
        vault=snapshot,
        access=access,
        roles=roles,
        vault_settings=vault_settings,
        clock=clock,
        revocations=revocations,
        consumers=consumers,
    )
    report = _with_drift(report, dependents)
    not_in_force = watch_revocations(
        inventory=inventory, revocations=revocations, access=access, roles=roles, vault=snapshot, audit=audit,
        alerts=alerts, clock=clock,
    )  # fmt: skip
    done = (tuple(rotations), tuple(policies), tuple(dependents), tuple(access_outcomes), not_in_force)
    serious = [f for f in report.findings if f.severity in ALERT_ON]
    _measure(inventory, report, dekstore, telemetry, outcome="drift" if serious else "compliant", shardkeys=shardkeys)
    if not serious:
        return SweepOutcome(report, None, *done)
    alert = _drift_alert(serious, inventory, audit, clock)
    publish_or_record(alerts, alert, audit=audit, clock=clock)
    return SweepOutcome(report, alert, *done)


def _with_drift(report: ComplianceReport, dependents: list[DependentsOutcome]) -> ComplianceReport:
    """The counter drift the dependents step found, as findings of the key it was found on."""
    extra = {d.key: d.findings for d in dependents if d.findings}
    if not extra:
        return report
    keys = tuple(dataclasses.replace(k, findings=k.findings + extra.get(k.name, ())) for k in report.keys)
    return dataclasses.replace(report, keys=keys)


# The app's severities in the contract's words (shared.telemetry.names: findings_critical/high/medium/low).
SEVERITY_WORDS = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.WARNING: "medium",
    Severity.INFO: "low",
}


def _measure(
    inventory: Any, report: ComplianceReport, dekstore: DekStore, telemetry: Telemetry, outcome: str,
    shardkeys: ShardKeyStore | None = None,
) -> None:  # fmt: skip
    """What the sweep saw, as telemetry: findings per key and severity, DEKs per key version, and one event."""
    totals: Counter[str] = Counter()
    for managed in inventory.keys:
        mine = Counter(SEVERITY_WORDS[f.severity] for f in report.findings if f.key == managed.name)
        totals.update(mine)
        for word in SEVERITY_WORDS.values():
            telemetry.gauge(names.FINDINGS, mine.get(word, 0), key=managed.name, severity=word)
        if managed.consumers_of(ConsumerKind.DEK_TABLE):
            try:
                counts = deks_per_kek_version(managed, dekstore, shardkeys)  # the counters: no scan
            except CmkError:
                continue  # unreadable now: the report says so; the next sweep measures again
            for key_id, n in counts.items():
                telemetry.gauge(names.DEKS, n, key=managed.name, version=last_segment(key_id))
    telemetry.event(
        names.SWEEP_COMPLETED, keys=len(inventory.keys), findings_critical=totals["critical"],
        findings_high=totals["high"], findings_medium=totals["medium"], findings_low=totals["low"], outcome=outcome,
    )  # fmt: skip


def _drift_alert(serious: list, inventory: Any, audit: AuditTrail, clock: Clock) -> Alert:
    """A summary that fits any queue: counts by finding code and severity, the keys, and the audit record that lists
    the findings (GET /api/keys has each one in full). However many findings there are, the alert stays small."""
    worst = Severity.CRITICAL if any(f.severity == Severity.CRITICAL for f in serious) else Severity.HIGH
    keys = sorted({f.key for f in serious})
    counts = dict(sorted(Counter(f.code for f in serious).items()))
    record = AuditRecord(
        uuid.uuid4().hex,
        clock.now(),
        "compliance-drift",
        "timer",
        keys[0] if len(keys) == 1 else "",
        worst.value,
        detail={"counts": counts, "findings": [f.to_json() for f in serious]},
    )
    try:
        audit.append(record)
        record_id: str | None = record.record_id
    except Exception:  # the alert still goes out; the findings are in the log and GET /api/keys
        record_id = None
    named = ", ".join(keys) if len(keys) <= MAX_KEYS_NAMED else f"{len(keys)} keys"
    return Alert(
        type=DRIFT_ALERT_TYPE,
        subject=f"/inventory/{','.join(keys)}" if len(keys) <= MAX_KEYS_NAMED else "/inventory",
        severity=worst,
        message=f"{len(serious)} finding(s) of high or critical severity on {named}",
        data={
            "counts": counts,
            "severities": dict(Counter(f.severity.value for f in serious)),
            "keys": keys[:MAX_KEYS_NAMED],
            "key_count": len(keys),
            "mode": str(inventory.mode),
            "audit_record_id": record_id,
            "details": "GET /api/keys",
        },
    )
