"""Every call to the revocation routes is on the audit record with its caller, the ones that change nothing too."""

from __future__ import annotations

import pytest

from tests.fakes.outbound import FakeWorkQueue
from tests.unit.revocation.test_revocation import _restore, _revoke


@pytest.fixture
def checks() -> FakeWorkQueue:
    return FakeWorkQueue()


def test_a_repeated_restoration_is_audited_with_its_caller(world, checks):
    revocation = _revoke(world, checks, service="mysql", dry_run=False).revocation
    _restore(world, checks, revocation.revocation_id)
    before = len(world.audit.all())
    again = _restore(world, checks, revocation.revocation_id, reason="pressed twice")
    assert again.status == "already-restored"
    records = world.audit.all()[before:]
    assert [(r.action, r.outcome, r.trigger) for r in records] == [("restoration", "already-restored", "operator:bob")]
    assert records[0].detail["id"] == revocation.revocation_id and again.audit_record_id == records[0].record_id
