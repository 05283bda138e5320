"""The periodic sweep. Today: the compliance report and a drift alert; rotation and clean-up join it later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.compliance import ComplianceReport, report_keys
from shared.model import Alert, Severity
from shared.ports import AccessControl, Alerts, Clock, KeyVault, RoleDefinitions, Vaults

ALERT_ON = (Severity.HIGH, Severity.CRITICAL)
DRIFT_ALERT_TYPE = "CmkGuardian.Compliance.Drift"


@dataclass(frozen=True)
class SweepOutcome:
    report: ComplianceReport
    alert: Alert | None


def run_sweep(
    *,
    inventory: Any,
    vault: KeyVault,
    access: AccessControl,
    roles: RoleDefinitions,
    vault_settings: Vaults,
    clock: Clock,
    alerts: Alerts,
) -> SweepOutcome:
    report = report_keys(
        inventory=inventory, vault=vault, access=access, roles=roles, vault_settings=vault_settings, clock=clock
    )
    serious = [f for f in report.findings if f.severity in ALERT_ON]
    if not serious:
        return SweepOutcome(report, None)
    worst = Severity.CRITICAL if any(f.severity == Severity.CRITICAL for f in serious) else Severity.HIGH
    keys = sorted({f.key for f in serious})
    alert = Alert(
        type=DRIFT_ALERT_TYPE,
        subject=f"/inventory/{','.join(keys)}",
        severity=worst,
        message=f"{len(serious)} finding(s) of high or critical severity on {', '.join(keys)}",
        data={"findings": [f.to_json() for f in serious], "mode": str(inventory.mode)},
    )
    alerts.publish(alert)
    return SweepOutcome(report, alert)
