"""The telemetry contract: every custom event and metric the app sends, with its dimensions, in one place.

The Workbook in infra/ queries exactly these names (customEvents.name, customDimensions, customMetrics.name), and
tests compare what handlers send against this module, so a renamed event or a dropped dimension fails a test here
rather than leaving an operator's chart silently empty. Dimension values are strings, never key material.
"""

from __future__ import annotations

from typing import Final

METER_NAME: Final = "cmk_guardian"
# The log record attribute Azure Monitor's exporter turns into a customEvents row of that name.
CUSTOM_EVENT_ATTRIBUTE: Final = "microsoft.custom_event.name"

KEY_ROTATED: Final = "CmkGuardian.KeyRotated"
REWRAP_STARTED: Final = "CmkGuardian.RewrapStarted"
REWRAP_COMPLETED: Final = "CmkGuardian.RewrapCompleted"
CONSUMER_MOVED: Final = "CmkGuardian.ConsumerMoved"
VERSION_RETIRED: Final = "CmkGuardian.VersionRetired"
ACCESS_REMEDIATED: Final = "CmkGuardian.AccessRemediated"
REVOCATION_EXECUTED: Final = "CmkGuardian.RevocationExecuted"
REVOCATION_VERIFIED: Final = "CmkGuardian.RevocationVerified"
REVOCATION_RESTORED: Final = "CmkGuardian.RevocationRestored"
ALERT_SENT: Final = "CmkGuardian.AlertSent"
SWEEP_COMPLETED: Final = "CmkGuardian.SweepCompleted"

EVENTS: Final[dict[str, tuple[str, ...]]] = {
    KEY_ROTATED: ("key", "version", "previous_version", "trigger", "outcome"),
    REWRAP_STARTED: ("key", "version", "shards", "outcome"),
    REWRAP_COMPLETED: ("key", "version", "processed", "succeeded", "failed", "duration_seconds", "outcome"),
    CONSUMER_MOVED: ("key", "version", "consumer", "outcome"),
    VERSION_RETIRED: ("key", "version", "outcome"),
    ACCESS_REMEDIATED: ("key", "principal", "consumer", "action", "outcome"),
    REVOCATION_EXECUTED: ("key", "consumer", "outcome"),
    REVOCATION_VERIFIED: ("key", "consumer", "outcome"),
    REVOCATION_RESTORED: ("key", "consumer", "outcome"),
    ALERT_SENT: ("alert_type", "severity", "key", "outcome"),
    SWEEP_COMPLETED: ("keys", "findings_critical", "findings_high", "findings_medium", "findings_low", "outcome"),
}

DEKS: Final = "cmk.deks"
REWRAP_DEKS: Final = "cmk.rewrap.deks"
FINDINGS: Final = "cmk.findings"
KEYVAULT_CALLS: Final = "cmk.keyvault.calls"
KEYVAULT_THROTTLED: Final = "cmk.keyvault.throttled"

GAUGE: Final = "gauge"
COUNTER: Final = "counter"
METRICS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    DEKS: (GAUGE, ("key", "version")),
    REWRAP_DEKS: (COUNTER, ("key", "outcome")),
    FINDINGS: (GAUGE, ("key", "severity")),
    KEYVAULT_CALLS: (COUNTER, ("operation", "status")),
    KEYVAULT_THROTTLED: (COUNTER, ("operation",)),
}
