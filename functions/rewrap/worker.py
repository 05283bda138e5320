"""One page of re-wraps: every DEK of one shard page moved to the target version, or left exactly as it was.

Per DEK: unwrap remotely under the DEK's own version, check the KCV, wrap locally with the target's public key (no
Key Vault call), replace the entity with an ETag match. A crash between any two steps leaves the DEK wrapped under a
version that still works, because the only write is the last step and it is all-or-nothing. A 412 means another
worker moved it first: re-read, skip it if it is on the target, and move it only if it is on an older version while
the target is still current (never from a newer version back). A KCV mismatch stops that DEK, leaves it
untouched and quarantines it (shared.envelope.counts), alerting once: the good copy is never replaced by bytes nobody
can check, and later pages skip it instead of failing on it and alerting again every hour. A page whose target is
no longer the key's current version (delivered late) moves nothing: a DEK never goes back to an older version.

Throttling never fails a DEK: it is retried later by a message of its own; the page fails (so the host retries it,
then poisons it) only when every DEK in it failed. Key Vault traffic stays inside one budget shared by all workers.

A page is not an audit record: the trail gets one record when the re-wrap starts (functions.rewrap.fan_out) and one
when it completes (here, by whichever page finishes it, under a claim), plus one for a page that refused DEKs. A
page's counts go to the log (only when it did something) and to the `cmk.rewrap.deks` metric.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from functions.rewrap.grant import move_grant
from functions.rewrap.messages import ROTATE_SHARD_KEY, RewrapMessage, parse_rewrap_message
from functions.rewrap.shard_keys import rewrap_shard_step, shard_key_state
from shared.audit import AuditRecord
from shared.envelope import QuarantinedDek, deks_per_kek_version, is_shard_wrapped
from shared.errors import CmkError, MalformedMessage, NotFound, ServiceUnavailable
from shared.inventory.model import UnknownKey
from shared.model import Alert, KeyVersion, Severity, WrappedDek, normalize_key_id, same_key_id
from shared.ports import Alerts, AuditTrail, Claims, Clock, DekStore, KeyVault, RewrapBudget, ShardKeyStore, WorkQueue
from shared.telemetry import NO_TELEMETRY, Telemetry, names

PAGE_SIZE = 100
# The vault's budget for RSA-2048 HSM keys is 2,000 operations per 10 s; re-wrap may use this share of it, leaving
# the rest to the consumers (MySQL, AKS) that unwrap on the same vault.
HSM_OPS_PER_WINDOW = 2000
BUDGET_SHARE = 0.5
# The shared budget is kept in short windows, each allowed 1/(W+1) of the 10 s share (W windows per 10 s): then no
# sliding 10 s, wherever it starts, holds more than the share, and the re-wrap still uses W/(W+1) of it (96% here).
BUDGET_WINDOW = timedelta(seconds=0.25)
RETRY_DELAY_SECONDS = 10
RESERVE_CHUNK = 10  # operations reserved at a time and spent at once
MAX_WAIT_SECONDS = 20.0  # a page waits for at most two budget windows in-process, then defers the rest
COMPLETED_ALERT = "CmkGuardian.Rewrap.Completed"
REWRAP_ACTION = "rewrap"  # the audit action of a re-wrap's records: started, completed, refused
KCV_ALERT = "CmkGuardian.Rewrap.KcvMismatch"


@dataclass(frozen=True)
class PageOutcome:
    key: str
    partition: str
    target: str
    processed: int = 0
    succeeded: int = 0
    skipped: int = 0  # already on the target
    failed: tuple[str, ...] = ()  # retried later (transient), by DEK id
    refused: tuple[str, ...] = ()  # KCV mismatch or a refusal no retry fixes: left untouched, quarantined
    quarantined: int = 0  # listed but already quarantined: not touched
    deferred: int = 0  # beyond this page's budget grant: re-enqueued
    continued: bool = False
    completed: bool = False  # this page finished the key's re-wrap
    superseded: bool = False  # the target is no longer the key's current version: nothing was touched
    alerts: tuple[Alert, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "partition": self.partition,
            "target": self.target,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "skipped": self.skipped,
            "failed": len(self.failed),
            "refused": len(self.refused),
            "quarantined": self.quarantined,
            "deferred": self.deferred,
            "continued": self.continued,
            "completed": self.completed,
            "superseded": self.superseded,
        }

    @property
    def noteworthy(self) -> bool:
        """Whether the page did or decided anything worth a log line: a page that found nothing to move is not."""
        return bool(self.succeeded or self.failed or self.refused or self.deferred or self.completed or self.superseded)


def window_limit() -> int:
    """Operations per budget window: (W + 1) windows of it fit in the 10 s share, W = windows per 10 s."""
    per_ten_seconds = HSM_OPS_PER_WINDOW * BUDGET_SHARE
    windows = 10.0 / BUDGET_WINDOW.total_seconds()
    return max(1, int(per_ten_seconds / (windows + 1)))


class WholePageFailed(ServiceUnavailable):
    """Every DEK of the page failed: raised so the host retries the message (and poisons it in the end)."""

    code = "RewrapPageFailed"


def rewrap_page(
    message: object,
    *,
    inventory: Any,
    vault: KeyVault,
    dekstore: DekStore,
    rewrap_queue: WorkQueue,
    budget: RewrapBudget,
    claims: Claims,
    audit: AuditTrail,
    alerts: Alerts,
    clock: Clock,
    sleep: Callable[[float], None],
    telemetry: Telemetry = NO_TELEMETRY,
    shardkeys: ShardKeyStore | None = None,
) -> PageOutcome:
    msg = parse_rewrap_message(message)
    try:
        managed = inventory.key(msg.key)
    except UnknownKey:
        raise MalformedMessage("key", f"{msg.key!r} is not a managed key (no longer in the inventory?)") from None
    if msg.action == ROTATE_SHARD_KEY:
        from functions.rewrap.shard_pages import rotated

        return rotated(managed, msg, vault=vault, dekstore=dekstore, shardkeys=shardkeys, audit=audit, alerts=alerts,
                       clock=clock)  # fmt: skip
    if shardkeys is not None and not msg.dek_ids and not msg.continuation:
        from functions.rewrap.shard_pages import migrated_shard  # no current-version read for a migrated shard

        shard_rows = shardkeys.list_shard(msg.partition)  # listed once for both paths
        done = migrated_shard(
            managed, msg, shard_rows, vault=vault, dekstore=dekstore, shardkeys=shardkeys, budget=budget,
            rewrap_queue=rewrap_queue, claims=claims, audit=audit, alerts=alerts, clock=clock,
        )  # fmt: skip
        if done is not None:
            return done
    current = vault.get_key(managed.ref)
    if current.version.lower() != msg.target_version.lower():
        return _superseded(managed, msg)
    if shardkeys is not None and not msg.dek_ids and not msg.continuation:
        step = rewrap_shard_step(
            managed, msg, current, vault=vault, shardkeys=shardkeys, budget=budget, rewrap_queue=rewrap_queue,
            clock=clock, limit_per_window=window_limit(), window=BUDGET_WINDOW, rows=shard_rows,
        )  # fmt: skip
        if step.deferred or step.migrated or step.refused:
            from functions.rewrap.shard_pages import shard_only  # it builds on this module's outcome and records

            return shard_only(managed, msg, step, dekstore=dekstore, shardkeys=shardkeys, claims=claims, audit=audit,
                              alerts=alerts, clock=clock)  # fmt: skip
    if msg.dek_ids:
        items, continuation = _by_id(dekstore, msg), None
    else:
        page = dekstore.list_page(msg.partition, msg.continuation, PAGE_SIZE)
        items, continuation = list(page.items), page.continuation
    # A DEK under a shard key depends on no KEK version itself (its shard key was re-wrapped above): skipped.
    todo = [d for d in items if not same_key_id(d.key_id, msg.target) and not is_shard_wrapped(d.algorithm)]
    created: dict[str, Any] = {}  # a version's creation time, read once per page
    todo = [d for d in todo if not _on_newer_version(d, current, managed, vault=vault, created=created)]
    held = _quarantined(dekstore, managed, msg.partition) if todo else set()
    todo = [d for d in todo if d.dek_id not in held]  # quarantined: left alone until an operator releases them
    held_here = sum(1 for d in items if d.dek_id in held)
    succeeded, skipped, failed, refused, sent = 0, len(items) - len(todo) - held_here, [], [], []
    now_work, later, retry_after = [], [], 0.0
    pending, waited = list(todo), 0.0
    while pending:
        # Reserve a few operations right before spending them, so a grant is spent in the window it was granted in
        # and no worker holds budget it is not using; when the window is spent, wait for the next one in-process.
        chunk, pending = pending[:RESERVE_CHUNK], pending[RESERVE_CHUNK:]
        grant = budget.reserve(
            managed.ref.vault_host,
            len(chunk),
            now=clock.now(),
            limit_per_window=window_limit(),
            window=BUDGET_WINDOW,
        )
        if not grant.granted:
            if waited + grant.retry_after > MAX_WAIT_SECONDS:
                later, retry_after = chunk + pending, grant.retry_after
                break
            sleep(max(grant.retry_after, 0.01))
            waited += max(grant.retry_after, 0.01)
            pending = chunk + pending
            continue
        use, pending = chunk[: grant.granted], chunk[grant.granted :] + pending
        now_work.extend(use)
        # The grant's DEKs at once, so it is spent within its window rather than a call's latency at a time.
        for dek, result in zip(use, move_grant(use, msg, managed, vault=vault, dekstore=dekstore), strict=True):
            if result == "moved":
                succeeded += 1
            elif result == "skipped":
                skipped += 1
            elif result.startswith("refused"):
                refused.append((dek, result.partition(":")[2] or "Refused"))
            else:
                failed.append(dek.dek_id)
    if now_work and len(failed) == len(now_work) and not succeeded and not skipped:
        # Nothing moved: the host retries this very message (and poisons it in the end), so nothing is enqueued
        # here, or a retry would start a second continuation chain.
        raise WholePageFailed(f"re-wrap of {managed.name}/{msg.partition}: every DEK of the page failed")
    if continuation:
        rewrap_queue.send(dataclasses.replace(msg, continuation=continuation, dek_ids=()).to_json())
    retry_ids = failed + [d.dek_id for d in later]
    if retry_ids:
        delay = RETRY_DELAY_SECONDS if failed else max(1, math.ceil(retry_after or 1))
        retry = dataclasses.replace(msg, continuation=None, dek_ids=tuple(retry_ids))
        rewrap_queue.send(retry.to_json(), delay_seconds=delay)
    outcome = PageOutcome(
        managed.name,
        msg.partition,
        msg.target,
        processed=len(items),
        succeeded=succeeded,
        skipped=skipped,
        failed=tuple(failed),
        refused=tuple(dek.dek_id for dek, _ in refused),
        quarantined=held_here,
        deferred=len(later),
        continued=bool(continuation),
    )
    for dek, reason in refused:
        # Quarantined, and alerted only when that is new: a DEK that cannot move is news once, not every hour.
        if dekstore.quarantine(QuarantinedDek(dek.key_id, dek.partition, dek.dek_id, reason, clock.now())):
            sent.append(_kcv_alert(managed, msg, dek.dek_id, reason))
    if refused:
        refused_ids = [dek.dek_id for dek, _ in refused]
        _record(audit, clock, managed, msg, "refused", {"partition": msg.partition, "dek_ids": refused_ids})
    for label, n in (("moved", succeeded), ("failed", len(failed)), ("refused", len(refused))):
        if n:
            telemetry.count(names.REWRAP_DEKS, n, key=managed.name, outcome=label)
    if not continuation and not retry_ids:
        done = _completion(
            managed, msg, dekstore=dekstore, claims=claims, audit=audit, clock=clock, shardkeys=shardkeys
        )
        if done is not None:
            sent.append(done)
            outcome = dataclasses.replace(outcome, completed=True)
            deks, seconds = done.data["deks"], done.data["duration_s"]
            telemetry.event(
                names.REWRAP_COMPLETED, key=managed.name, version=msg.target_version, processed=deks, succeeded=deks,
                failed=0, duration_seconds=seconds, outcome="completed",
            )  # fmt: skip
    for alert in sent:
        alerts.publish(alert)
    return dataclasses.replace(outcome, alerts=tuple(sent))


def _record(audit: AuditTrail, clock: Clock, managed: Any, msg: RewrapMessage, outcome: str, detail: dict,
            action: str = REWRAP_ACTION) -> None:  # fmt: skip
    audit.append(
        AuditRecord(
            uuid.uuid4().hex,
            clock.now(),
            action,
            "queue",
            managed.name,
            outcome,
            to_version=msg.target_version,
            duration_ms=int(detail.pop("duration_ms", 0)),
            detail=detail,
        )
    )


def completion_claim_id(managed: Any, version: str) -> str:
    """The claim that makes a re-wrap's completion one record and one alert, whoever sees it first."""
    return f"rewrap-done|{managed.ref.vault_host}|{managed.name.lower()}|{version.lower()}"


def _superseded(managed: Any, msg: RewrapMessage) -> PageOutcome:
    """A page for a version that is no longer current (a message delivered late: a dead instance's lease ran out, a
    retry came after the next rotation) moves nothing: its DEKs belong to the current version's own re-wrap, and
    moving them to the old target would take them backwards, onto a version retirement may already have disabled.
    Nor does it continue its chain. Logged (the outcome says superseded), so the log shows why the page did nothing;
    the trail records the current version's re-wrap instead."""
    return PageOutcome(managed.name, msg.partition, msg.target, superseded=True)


def _by_id(dekstore: DekStore, msg: RewrapMessage) -> list[WrappedDek]:
    found = []
    for dek_id in msg.dek_ids:
        try:
            found.append(dekstore.get(msg.partition, dek_id))
        except NotFound:
            continue  # deleted since: nothing to move
    return found


def _on_newer_version(dek: WrappedDek, target: KeyVersion, managed: Any, *, vault: KeyVault, created: dict) -> bool:
    """Whether `dek` is already on a version created after the page's target: a rotation and its re-wrap overtook
    this page between its start check and its listing (L2). Such a DEK is skipped, never written back. Unknown
    (the version cannot be read): False, and the unwrap decides as before."""
    version = dek.key_version.lower()
    if version not in created:
        try:
            created[version] = vault.get_key(managed.ref, dek.key_version).created
        except CmkError:
            created[version] = None
    return created[version] is not None and target.created is not None and created[version] > target.created


def _quarantined(dekstore: DekStore, managed: Any, partition: str) -> set[str]:
    """The ids of this shard's quarantined DEKs; none when the list cannot be read (then a refused DEK is tried
    again, and quarantine() answers that it already was: no second alert)."""
    try:
        return {q.dek_id for q in dekstore.quarantined(managed.ref) if q.partition == partition}
    except CmkError:
        return set()


def _kcv_alert(managed: Any, msg: RewrapMessage, dek_id: str, reason: str) -> Alert:
    return Alert(
        KCV_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}/deks/{dek_id}",
        Severity.HIGH,
        f"DEK {dek_id} of {managed.name} was not re-wrapped ({reason}): its unwrap could not be verified (KCV) or was "
        "refused; its entity is untouched and it is quarantined (skipped by the re-wrap until an operator releases "
        "it: POST /api/quarantine/release)",
        {"key": managed.name, "partition": msg.partition, "dek_id": dek_id, "target": msg.target, "reason": reason},
    )


def _completion(
    managed: Any, msg: RewrapMessage, *, dekstore: DekStore, claims: Claims, audit: AuditTrail, clock: Clock,
    shardkeys: ShardKeyStore | None = None,
) -> Alert | None:  # fmt: skip
    """When no DEK and no shard key of the key remains on another version: the one "re-wrap completed" record and
    alert (a claim makes it one, whichever shard finishes last, on whichever instance). The DEKs are the counters'
    (a read per shard, no scan); a DEK under a shard key counts on its shard key, which `shard_key_state` saw."""
    behind, migrated = shard_key_state(managed, msg.target, shardkeys)
    if behind:
        return None
    counts = deks_per_kek_version(managed, dekstore, shardkeys)
    remaining = sum(n for key_id, n in counts.items() if not same_key_id(key_id, msg.target))
    if remaining:
        return None
    claim = claims.claim(
        completion_claim_id(managed, msg.target_version),
        uuid.uuid4().hex,
        now=clock.now(),
        ttl=timedelta(days=3650),
    )
    if not claim.taken:
        return None
    total = counts.get(normalize_key_id(msg.target), 0) or sum(counts.values())
    seconds = (clock.now() - msg.started_at).total_seconds() if msg.started_at else None
    claims.complete(claim.claim, {"deks": total})
    _record(
        audit, clock, managed, msg, "completed",
        {"deks": total, "remaining": 0, "duration_seconds": seconds, "duration_ms": int((seconds or 0) * 1000)},
    )  # fmt: skip
    return Alert(
        COMPLETED_ALERT,
        f"/keys/{managed.vault.name}/{managed.name}",
        Severity.INFO,
        f"every shard key of {managed.name} is on version {msg.target_version} (its DEKs are under them)"
        if migrated
        else f"every DEK of {managed.name} ({total}) is on version {msg.target_version}",
        {"key": managed.name, "target": msg.target, "deks": total, "duration_s": seconds, "shard_keys": migrated},
    )
