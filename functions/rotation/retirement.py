"""Retiring old key versions: one guard decides, and nothing is disabled while anything still depends on it.

A version may be disabled only when no DEK and no shard key is wrapped under it, no consumer points at it (a MySQL
server's primary and geo-backup key, a disk encryption set's active and previous keys), it is not current, and the
inventory's grace period has passed since its successor appeared. The sweep then disables it (enforce mode, with
`retire_after` set): planned, recorded, executed, then verified by reading it back. An unreadable consumer, registry
or shard-key store blocks: not knowing is never permission. Only an operator's explicit crypto-shred (revocation)
bypasses this guard.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from shared.audit import AuditRecord
from shared.envelope import kek_versions_of, shard_prefix
from shared.errors import CmkError
from shared.model import Alert, ConsumerKind, KeyVersion, Severity, normalize_key_id, same_key_id
from shared.ports import Alerts, AuditTrail, Clock, Consumers, DekStore, KeyVault, ShardKeyStore
from shared.telemetry import NO_TELEMETRY, Telemetry, names

RETIRED_ALERT = "CmkGuardian.Key.VersionRetired"
NO_SHARD_KEYS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True)
class RetirementDecision:
    version: str
    allowed: bool
    blockers: tuple[str, ...]


def retirement_blockers(
    version: KeyVersion,
    *,
    current: KeyVersion,
    versions: list[KeyVersion],
    dek_counts: dict[str, int] | None,
    in_use: set[str] | None,
    grace: Any,
    now: datetime,
    shard_key_counts: Mapping[str, int] | None = NO_SHARD_KEYS,
) -> tuple[str, ...]:
    """Why `version` may not be disabled now; empty means it may. `dek_counts` / `in_use` None: unknown.
    `shard_key_counts`: shard keys per KEK version of a key with shard keys ({} without; None: unreadable)."""
    blockers = []
    if version.version == current.version:
        blockers.append("it is the current version")
    if not version.enabled:
        blockers.append("it is already disabled")
    if dek_counts is None:
        blockers.append("the DEK registry could not be read")
    elif depending := sum(n for k, n in dek_counts.items() if same_key_id(k, version.key_id)):
        blockers.append(f"{depending} DEK(s) depend on it")
    if shard_key_counts is None:
        blockers.append("the shard keys could not be read")
    elif wrapping := sum(n for k, n in shard_key_counts.items() if same_key_id(k, version.key_id)):
        blockers.append(f"{wrapping} shard key(s) are wrapped by it")
    if in_use is None:
        blockers.append("a consumer's state could not be read")
    elif normalize_key_id(version.key_id) in in_use:
        blockers.append("a consumer uses it")
    successors = [v.created for v in versions if v.created and version.created and v.created > version.created]
    if grace is None:
        blockers.append("the inventory sets no retire_after")
    elif not successors:
        blockers.append("no newer version exists")
    elif now - min(successors) < grace.delta:
        blockers.append(f"its successor is younger than retire_after ({grace})")
    return tuple(blockers)


def consumer_key_ids(managed: Any, consumers: Consumers) -> set[str] | None:
    """Every versioned key id the key's Azure consumers use (normalised: ARM may spell the vault's URL otherwise than
    the inventory does), or None when one could not be read."""
    used: set[str] = set()
    for consumer in managed.consumers:
        if consumer.kind == ConsumerKind.DEK_TABLE:
            continue
        try:
            state = consumers.get_state(consumer.kind.value, consumer.resource_id)
        except CmkError:
            return None
        used |= {normalize_key_id(u) for u in state.key_urls_in_use}
    return used


def shard_key_counts(managed: Any, shardkeys: ShardKeyStore | None) -> dict[str, int] | None:
    """Shard keys per KEK version (normalised id) of `managed`; {} when it has no DEK table or no store is given,
    None when the store could not be read (which blocks: not knowing is never permission)."""
    if shardkeys is None or not managed.consumers_of(ConsumerKind.DEK_TABLE):
        return {}
    try:
        return kek_versions_of(shardkeys.list_prefix(shard_prefix(managed)))
    except CmkError:
        return None


def retire_unused_versions(
    managed: Any,
    *,
    enforce: bool,
    vault: KeyVault,
    dekstore: DekStore,
    consumers: Consumers,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> list[RetirementDecision]:
    """The sweep's retirement step for one key: decide for every enabled old version, disable those allowed. With
    `shardkeys`, a version that still wraps a shard key is kept (read in one query, bounded by the shard count)."""
    versions = vault.list_versions(managed.ref)
    current = vault.get_key(managed.ref)
    try:
        counts: dict[str, int] | None = dekstore.count_by_key_id(managed.ref)
    except CmkError:
        counts = None
    in_use = consumer_key_ids(managed, consumers)
    shard_counts = shard_key_counts(managed, shardkeys)
    now = clock.now()
    decisions = []
    for version in versions:
        if version.version == current.version or not version.enabled:
            continue
        blockers = retirement_blockers(
            version,
            current=current,
            versions=versions,
            dek_counts=counts,
            in_use=in_use,
            grace=managed.rotation.retire_after,
            now=now,
            shard_key_counts=shard_counts,
        )
        decision = RetirementDecision(version.version, not blockers, blockers)
        decisions.append(decision)
        if blockers or not enforce:
            continue
        _retire(managed, version, vault=vault, audit=audit, alerts=alerts, clock=clock, telemetry=telemetry)
    return decisions


def _retire(
    managed: Any,
    version: KeyVersion,
    *,
    vault: KeyVault,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    telemetry: Telemetry = NO_TELEMETRY,
):
    plan = audit.append(
        AuditRecord(
            uuid.uuid4().hex, clock.now(), "retire-version", "timer", managed.name, "planned",
            from_version=version.version, detail={"reason": "no DEK and no consumer depends on it"},
        )
    )  # fmt: skip
    try:
        vault.update_version(managed.ref, version.version, enabled=False)
        verified = not vault.get_key(managed.ref, version.version).enabled
    except CmkError as exc:
        audit.append(
            AuditRecord(
                uuid.uuid4().hex, clock.now(), "retire-version", "timer", managed.name, "failed",
                from_version=version.version, detail={"error": exc.code, "plan": plan.record_id},
            )
        )  # fmt: skip
        telemetry.event(names.VERSION_RETIRED, key=managed.name, version=version.version, outcome="failed")
        return
    record = audit.append(
        AuditRecord(
            uuid.uuid4().hex, clock.now(), "retire-version", "timer", managed.name,
            "retired" if verified else "failed", from_version=version.version,
            detail={"plan": plan.record_id, "verified": verified},
        )
    )  # fmt: skip
    outcome = "retired" if verified else "failed"
    telemetry.event(names.VERSION_RETIRED, key=managed.name, version=version.version, outcome=outcome)
    alerts.publish(
        Alert(
            RETIRED_ALERT,
            f"/keys/{managed.vault.name}/{managed.name}",
            Severity.INFO if verified else Severity.HIGH,
            f"{managed.name}/{version.version} disabled: nothing depended on it"
            if verified
            else f"{managed.name}/{version.version} could not be verified as disabled",
            {"key": managed.name, "version": version.version, "audit_id": record.record_id},
        )
    )
