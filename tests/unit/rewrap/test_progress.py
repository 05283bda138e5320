"""A re-wrap's progress from its two audit records and the registry's counts (no page records any more): processed
and remaining, running until the completion, failures from the refusals, and the rate since the start."""

from __future__ import annotations

import uuid
from datetime import timedelta

from functions.rewrap import rewrap_progress
from shared.audit import AuditRecord

MYSQL = "mysql-encryption-key"


def _record(world, outcome: str, seconds: int, **detail) -> None:
    at = world.clock.now() + timedelta(seconds=seconds)
    world.audit.append(AuditRecord(uuid.uuid4().hex, at, "rewrap", "queue", MYSQL, outcome, to_version="v2",
                                   detail=detail))  # fmt: skip


def test_a_re_wrap_in_flight_counts_what_left_the_old_version_and_its_rate(world):
    managed = world.key(MYSQL)
    target = managed.ref.version_id("v2")
    _record(world, "started", 0, deks=1000, shards=16)
    _record(world, "refused", 30, dek_ids=["dek-1", "dek-2"])
    counts = {target: 600, managed.ref.version_id("v1"): 400}
    progress = rewrap_progress(managed, target, counts, audit=world.audit, now=world.clock.now() + timedelta(minutes=2))
    assert progress == {
        "target_version": "v2", "processed": 602, "succeeded": 600, "failed": 2, "remaining": 400, "running": True,
        "rate_per_minute": 301.0,
    }  # fmt: skip


def test_a_completed_re_wrap_is_not_running_and_its_rate_ends_at_its_completion(world):
    managed = world.key(MYSQL)
    target = managed.ref.version_id("v2")
    _record(world, "started", 0, deks=1000, shards=16)
    _record(world, "completed", 120, deks=1000, remaining=0)
    later = world.clock.now() + timedelta(hours=5)
    progress = rewrap_progress(managed, target, {target: 1000}, audit=world.audit, now=later)
    assert (progress["processed"], progress["remaining"], progress["running"]) == (1000, 0, False)
    assert progress["rate_per_minute"] == 500.0


def test_no_record_yet_is_nothing_processed_and_not_running(world):
    managed = world.key(MYSQL)
    target = managed.ref.version_id("v2")
    progress = rewrap_progress(managed, target, {managed.ref.version_id("v1"): 5}, audit=world.audit)
    assert (progress["processed"], progress["remaining"], progress["running"]) == (0, 5, False)
    assert "rate_per_minute" not in progress
