"""`GET /api/keys`: the compliance report, and for each key what depends on it right now.

Per key: how many DEKs sit on each version, which version each Azure consumer uses and whether it can reach it, and
the re-wrap to the current version (processed, succeeded, failed, remaining, running) as the re-wrap's audit
records and the registry's counts tell it. A part that cannot be read says so in place instead of failing the answer.
"""

from __future__ import annotations

from typing import Any

from functions.compliance.report import report_keys
from functions.rewrap import rewrap_progress
from shared.arm_ids import last_segment
from shared.envelope import kek_versions_of, shard_prefix
from shared.errors import CmkError
from shared.model import ConsumerKind
from shared.ports import (
    AccessControl,
    AuditTrail,
    Clock,
    Consumers,
    DekStore,
    KeyVault,
    Revocations,
    RoleDefinitions,
    ShardKeyStore,
    Vaults,
)


def keys_status(
    *,
    inventory: Any,
    vault: KeyVault,
    access: AccessControl,
    roles: RoleDefinitions,
    vault_settings: Vaults,
    clock: Clock,
    dekstore: DekStore,
    consumers: Consumers,
    audit: AuditTrail,
    revocations: Revocations | None = None,
    shardkeys: ShardKeyStore | None = None,
) -> dict[str, Any]:
    report = report_keys(
        inventory=inventory,
        vault=vault,
        access=access,
        roles=roles,
        vault_settings=vault_settings,
        clock=clock,
        revocations=revocations,
        consumers=consumers,
    )
    body = report.to_json()
    active = _active_revocations(revocations)
    for key_json, managed in zip(body["keys"], inventory.keys, strict=True):
        key_json["revocations"] = active.get(managed.name.lower(), [])
        key_json["dependents"] = dependents(
            managed, key_json.get("key_id"), dekstore=dekstore, consumers=consumers, audit=audit, clock=clock,
            shardkeys=shardkeys,
        )  # fmt: skip
    return body


def _active_revocations(revocations: Revocations | None) -> dict[str, list[dict[str, Any]]]:
    """Each key's revocations in force, so that an operator looking at a key sees that it is revoked on purpose."""
    if revocations is None:
        return {}
    try:
        active = revocations.active()
    except CmkError as exc:
        return {"": [{"error": f"{exc.code}: the revocation ledger could not be read"}]}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in active:
        by_key.setdefault(r.key.lower(), []).append(
            {"id": r.revocation_id, "action": r.action.value, "principal_id": r.principal_id, "state": r.state.value}
        )
    return by_key


def dependents(
    managed: Any,
    current_id: str | None,
    *,
    dekstore: DekStore,
    consumers: Consumers,
    audit: AuditTrail,
    clock: Clock,
    shardkeys: ShardKeyStore | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"consumers": []}
    for consumer in managed.consumers:
        if consumer.kind == ConsumerKind.DEK_TABLE:
            continue
        try:
            state = consumers.get_state(consumer.kind.value, consumer.resource_id)
        except CmkError as exc:
            out["consumers"].append(
                {"kind": consumer.kind.value, "resource_id": consumer.resource_id, "error": exc.code}
            )
            continue
        out["consumers"].append(
            {
                "kind": consumer.kind.value,
                "resource_id": consumer.resource_id,
                "version": last_segment(state.key_url) if state.key_url else None,
                "follows_latest": state.follows_latest,
                "available": state.available,
                "error": state.error,
                "other_versions": [last_segment(u) for u in state.other_key_urls],
                "identities": list(state.identities),  # the principals it really reaches its key with (ARM's)
            }
        )
    if not managed.consumers_of(ConsumerKind.DEK_TABLE):
        return out
    try:
        counts = dekstore.count_by_key_id(managed.ref)
    except CmkError as exc:
        out["deks"] = {"error": exc.code}
        return out
    out["deks_by_version"] = {last_segment(k): n for k, n in sorted(counts.items())}
    if shardkeys is not None:
        # A shard-keys key's DEKs hang off shard keys: which KEK version each shard key is on is its dependency, and
        # a re-wrap is finished when none is behind (one query, bounded by the shard count).
        try:
            by_kek = kek_versions_of(shardkeys.list_prefix(shard_prefix(managed)))
        except CmkError as exc:
            out["shard_keys"] = {"error": exc.code}
            return out
        if by_kek:
            out["shard_keys_by_version"] = {last_segment(k): n for k, n in sorted(by_kek.items())}
            counts = {k: counts.get(k, 0) + by_kek.get(k, 0) for k in {*counts, *by_kek}}
    if current_id:
        out["rewrap"] = _rewrap_progress(managed, current_id, counts, audit=audit, clock=clock)
    return out


def _rewrap_progress(managed: Any, current_id: str, counts: dict[str, int], *, audit: AuditTrail, clock: Clock) -> dict:
    """The re-wrap's records (started, completed) and the registry's counts: functions.rewrap.progress."""
    return rewrap_progress(managed, current_id, counts, audit=audit, now=clock.now())
