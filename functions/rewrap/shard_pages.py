"""The outcomes of the re-wrap queue's shard-key messages, in the worker's terms (PageOutcome, its alerts, its
records): a shard whose shard keys were all the work (migrated: its DEK rows are not read), one deferred to the next
budget window, one whose shard-key unwrap was refused, and a scheduled shard-key rotation. functions.rewrap.worker
calls these; they live here to keep the worker one concept long."""

from __future__ import annotations

import dataclasses
from typing import Any

from functions.rewrap.shard_keys import ShardStep, rotate_shard_step, step_detail
from functions.rewrap.worker import PageOutcome, _completion, _kcv_alert, _record

ROTATE_ACTION = "rotate-shard-key"  # the audit action of a scheduled shard-key rotation


def shard_only(managed: Any, msg, step: ShardStep, *, dekstore, shardkeys, claims, audit, alerts, clock) -> PageOutcome:
    outcome = PageOutcome(managed.name, msg.partition, msg.target, succeeded=step.rewrapped)
    outcome, sent = dataclasses.replace(outcome, deferred=int(step.deferred)), []
    if step.refused:
        # The shard key's unwrap was refused (disabled version, KCV): nothing changed; recorded and alerted as a DEK's.
        sent.append(_kcv_alert(managed, msg, f"shard-key:{msg.partition}"))
        outcome = dataclasses.replace(outcome, refused=(f"shard-key:{msg.partition}",))
        _record(audit, clock, managed, msg, "refused", {"partition": msg.partition, **step_detail(step)})
    elif step.migrated:
        done = _completion(
            managed, msg, dekstore=dekstore, claims=claims, audit=audit, clock=clock, shardkeys=shardkeys
        )
        if done is not None:
            sent.append(done)
            outcome = dataclasses.replace(outcome, completed=True)
    for alert in sent:
        alerts.publish(alert)
    return dataclasses.replace(outcome, alerts=tuple(sent))


def rotated(managed: Any, msg, *, vault, dekstore, shardkeys, audit, alerts, clock) -> PageOutcome:
    """A scheduled shard-key rotation of one shard (its DEKs re-sealed locally), recorded; a duplicate or a late
    message finds it not due any more and changes nothing."""
    change = rotate_shard_step(managed, msg, vault=vault, dekstore=dekstore, shardkeys=shardkeys, clock=clock)
    if change is None:
        return PageOutcome(managed.name, msg.partition, msg.target, skipped=1)
    outcome = PageOutcome(
        managed.name, msg.partition, msg.target, change.moved + len(change.refused), change.moved,
        refused=change.refused, completed=change.finished,
    )  # fmt: skip
    sent = tuple(_kcv_alert(managed, msg, dek_id) for dek_id in change.refused)
    for alert in sent:
        alerts.publish(alert)
    label = "rotated" if change.finished else "refused"
    _record(audit, clock, managed, msg, label, change.to_json(), action=ROTATE_ACTION)
    return dataclasses.replace(outcome, alerts=sent)
