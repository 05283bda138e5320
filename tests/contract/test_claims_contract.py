"""Claims semantics every backend must keep (Table Storage's): one winner per insert, one winner per take-over of an
expired claim, ETag-guarded complete and release. Runs the fake and the Table adapter on Azurite."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.coordination.claims import MAX_OUTCOME_CHARS, ClaimStatus, rotation_claim_id
from shared.errors import InvalidInput, PreconditionFailed
from tests.contract.conftest import STORAGE_MODES, identity_table
from tests.fakes.claims import FakeClaims
from tests.support.azurite import start_azurite

NOW = datetime(2026, 12, 1, 22, 0, 0, 123456, tzinfo=UTC)
TTL = timedelta(minutes=10)
CLAIM = rotation_claim_id("kv-cmk-reference.vault.azure.net", "mysql-encryption-key", "0123456789abcdef")
RACERS = 8


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator:
    running = start_azurite(tmp_path_factory.mktemp("azurite-claims"))
    try:
        yield running
    finally:
        running.stop()


def _table_claims(connection: str):
    from shared.azure.claims import TableClaims
    from shared.azure.tables import LazyTable, table_client

    name = f"claims{uuid.uuid4().hex[:12]}"
    return TableClaims(LazyTable(table_client(name, connection_string=connection)))


@pytest.fixture(params=STORAGE_MODES)
def claims(request):
    if request.param == "fake":
        return FakeClaims()
    if request.param == "azurite-identity":
        from shared.azure.claims import TableClaims

        return TableClaims(identity_table(request.getfixturevalue("azurite_oauth"), f"claims{uuid.uuid4().hex[:12]}"))
    return _table_claims(request.getfixturevalue("azurite").connection_string)


def _race(n: int, act) -> list:
    """Runs `act(i)` in n threads released together; returns their results in thread order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = act(i)
        except BaseException as exc:  # reported below: a racer that failed fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_a_first_claim_is_taken_and_read_back(claims):
    result = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL)
    assert result.taken and result.claim.etag
    assert result.claim.status is ClaimStatus.IN_PROGRESS
    assert (result.claim.taken_at, result.claim.expires_at) == (NOW, NOW + TTL)
    assert claims.get(CLAIM) == result.claim
    assert claims.get(CLAIM + "-other") is None


def test_a_live_claim_is_not_taken_again(claims):
    first = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL)
    second = claims.claim(CLAIM, "owner-b", now=NOW + TTL - timedelta(microseconds=1), ttl=TTL)
    assert not second.taken
    assert second.claim == first.claim and second.claim.owner == "owner-a"


def test_claiming_again_as_the_same_owner_is_a_retry_that_still_holds(claims):
    first = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL)
    again = claims.claim(CLAIM, "owner-a", now=NOW + timedelta(seconds=1), ttl=TTL)
    assert again.taken and again.claim == first.claim and again.claim.etag == first.claim.etag
    assert claims.complete(again.claim, {"ok": True}).status is ClaimStatus.COMPLETED


def test_eight_concurrent_claimers_one_wins(claims):
    results = _race(RACERS, lambda i: claims.claim(CLAIM, f"owner-{i}", now=NOW, ttl=TTL))
    winners = [r for r in results if r.taken]
    assert len(winners) == 1
    assert {r.claim.owner for r in results} == {winners[0].claim.owner}
    assert claims.get(CLAIM).owner == winners[0].claim.owner


def test_eight_concurrent_takers_of_an_expired_claim_one_wins(claims):
    crashed = claims.claim(CLAIM, "crashed", now=NOW, ttl=TTL).claim
    later = NOW + TTL  # expires_at <= now: expired
    results = _race(RACERS, lambda i: claims.claim(CLAIM, f"taker-{i}", now=later, ttl=TTL))
    winners = [r for r in results if r.taken]
    assert len(winners) == 1
    winner = winners[0].claim
    assert winner.owner != "crashed" and winner.taken_at == later
    assert {r.claim.owner for r in results} == {winner.owner}
    with pytest.raises(PreconditionFailed):
        claims.complete(crashed, {"to_version": "late"})
    claims.release(crashed)  # no longer ours: a no-op
    assert claims.get(CLAIM) == winner


def test_complete_keeps_the_outcome_and_a_completed_claim_is_never_taken_over(claims):
    taken = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL).claim
    outcome = {"to_version": "fedcba9876543210", "n": 2, "nested": {"ok": True}, "text": "ünïcode"}
    done = claims.complete(taken, outcome)
    assert done.status is ClaimStatus.COMPLETED and done.outcome == outcome and done.etag != taken.etag
    assert claims.get(CLAIM) == done and claims.get(CLAIM).outcome == outcome
    much_later = claims.claim(CLAIM, "owner-b", now=NOW + 100 * TTL, ttl=TTL)
    assert not much_later.taken and much_later.claim.outcome == outcome
    with pytest.raises(PreconditionFailed):
        claims.complete(taken, {"again": True})  # the ETag moved with the completion


def test_release_frees_the_claim_for_the_next_claimer(claims):
    taken = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL).claim
    claims.release(taken)
    assert claims.get(CLAIM) is None
    claims.release(taken)  # already gone: still fine
    assert claims.claim(CLAIM, "owner-b", now=NOW, ttl=TTL).taken
    with pytest.raises(PreconditionFailed):
        claims.complete(taken, {})


def test_release_of_a_stale_claim_leaves_the_new_holder_alone(claims):
    taken = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL).claim
    done = claims.complete(taken, {"ok": True})
    claims.release(taken)  # stale ETag: the completed claim stays
    assert claims.get(CLAIM) == done
    claims.release(dataclasses.replace(done, etag=None))  # no ETag: never deleted unconditionally
    assert claims.get(CLAIM) == done


def test_ids_with_characters_table_keys_forbid_are_distinct_claims(claims):
    odd = ["rotate|kv/a|k#1|v?2", "rotate|kv\\a|k%231|v", "rotate|kv\ta|k|v", "rotate|kv'a|k|v", "plain"]
    for i, claim_id in enumerate(odd):
        assert claims.claim(claim_id, f"o{i}", now=NOW, ttl=TTL).taken, claim_id
    assert [claims.get(c).owner for c in odd] == [f"o{i}" for i in range(len(odd))]
    assert [claims.get(c).claim_id for c in odd] == odd


@pytest.mark.parametrize("outcome", [["not", "a", "dict"], {"when": NOW}, {"big": "x" * MAX_OUTCOME_CHARS}])
def test_an_outcome_no_table_can_keep_is_refused_naming_it_and_changes_nothing(claims, outcome):
    taken = claims.claim(CLAIM, "owner-a", now=NOW, ttl=TTL).claim
    with pytest.raises(InvalidInput) as err:
        claims.complete(taken, outcome)
    assert err.value.field == "outcome"
    assert claims.get(CLAIM).status is ClaimStatus.IN_PROGRESS
    assert claims.complete(taken, {"ok": True}).status is ClaimStatus.COMPLETED
