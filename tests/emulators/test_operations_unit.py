"""The pieces of Azure's timing on their own: operations (due time, Retry-After, persistence) and disk moves."""

from __future__ import annotations

import json

import pytest

from emulators.core import MovableClock
from emulators.disks import DiskMoves
from emulators.operations import FAILED, IN_PROGRESS, SUCCEEDED, Operations

RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforMySQL/flexibleServers/db"


def start(ops: Operations, *, timed: bool = True):
    return ops.start(RID, "Microsoft.DBforMySQL", "westeurope", "PATCH", body={"p": 1}, caller={}, timed=timed)


def test_a_timed_operation_is_due_after_its_duration_on_the_emulated_clock() -> None:
    clock = MovableClock()
    ops = Operations(clock, 40)
    operation = start(ops)
    assert operation.status == IN_PROGRESS and ops.in_flight(RID.upper()) is operation
    assert ops.retry_after(operation) == 10  # never more than 10 s between status reads
    clock.advance(39.5)
    assert ops.due() == [] and ops.retry_after(operation) == 1
    clock.advance(1)
    assert ops.due() == [operation]
    ops.finish(operation)
    assert operation.status == SUCCEEDED and operation.body is None and ops.in_flight(RID) is None


def test_a_write_that_took_effect_at_once_has_already_succeeded() -> None:
    ops = Operations(MovableClock(), 40)
    operation = start(ops, timed=False)
    assert operation.status == SUCCEEDED and ops.in_flight(RID) is None and ops.due() == []


def test_a_failed_operation_keeps_its_error_for_the_status_read() -> None:
    ops = Operations(MovableClock(), 0)
    operation = start(ops)
    ops.finish(operation, {"code": "KeyVaultAccessFailed", "message": "no"})
    status = operation.to_status("/x")
    assert status["status"] == FAILED and status["error"]["code"] == "KeyVaultAccessFailed" and "endTime" in status


def test_operations_and_counts_survive_a_snapshot_and_a_reset_restores_the_configured_duration() -> None:
    clock = MovableClock()
    ops = Operations(clock, 40)
    ops.set_duration(5)
    operation = start(ops)
    ops.count_write(RID, "PATCH", refused=False)
    ops.count_write(RID, "PATCH", refused=True)
    restored = Operations(clock, 40)
    restored.restore(json.loads(json.dumps(ops.snapshot())))
    assert restored.in_flight(RID).id == operation.id and restored.duration_seconds == 5
    assert restored.to_admin()["patches"] == {
        RID: {"accepted": 1, "refused": 1, "by_method": {"PATCH": {"accepted": 1, "refused": 1}}}
    }
    restored.reset()
    assert restored.duration_seconds == 40 and restored.to_admin()["operations"] == []
    older = Operations(clock, 40)
    older.restore({"6c1f": {"resource_id": RID, "namespace": "x", "location": "y", "start": "z"}})  # older files
    assert older.to_admin()["operations"] == []


@pytest.mark.parametrize("bad", [-1, "10", True, None])
def test_a_bad_duration_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="duration_seconds"):
        Operations(MovableClock()).set_duration(bad)


def test_disks_move_after_the_lag_unless_held() -> None:
    disks = DiskMoves(20 * 60)
    props = {"previousKeys": [{"keyUrl": "old"}], "lastKeyRotationTimestamp": "2026-01-01T00:00:00Z"}
    rotated = 1767225600.0  # 2026-01-01T00:00:00Z
    assert not disks.all_moved("des", props, rotated + 19 * 60)
    assert disks.all_moved("des", props, rotated + 20 * 60)
    disks.hold("DES", True)
    assert not disks.all_moved("des", props, rotated + 86400)
    disks.hold("des", False)
    assert disks.all_moved("des", props, rotated + 86400)
    assert not disks.all_moved("des", {"previousKeys": []}, rotated + 86400)  # nothing left to move
