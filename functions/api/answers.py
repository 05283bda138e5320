"""Handlers' outcomes -> HTTP status, JSON body and headers, so that the trigger module decides nothing.

Errors, raised or carried in an outcome, go through the one table (shared.http.errors); an outcome that is not an error
chooses its own status here. Pure (no azure.functions), so a test walks every outcome without a host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.revocation import RevocationOutcome
from functions.rotation.rotate import RotationOutcome, RotationStatus
from shared.errors import CmkError, Conflict, UnexpectedResponse
from shared.http.errors import error_response


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error_answer(exc: BaseException) -> Answer:
    answer = error_response(exc)
    return Answer(answer.status, answer.body, answer.headers)


def ok(body: dict[str, Any]) -> Answer:
    return Answer(200, body)


def rotation_answer(outcome: RotationOutcome) -> Answer:
    """201 when this request made the new version; 200 when it was already made (an identical request in the dedupe
    window, another trigger, or the vault's own policy); 409 while another holder rotates; a failure answers as its
    error does in the table (502, 429 with Retry-After, ...). Non-2xx answers carry the outcome beside the error,
    so the caller still learns the audit record's id."""
    if outcome.status is RotationStatus.ROTATED:
        return Answer(201, outcome.to_json())
    if outcome.status is RotationStatus.REFUSED:
        return _with_outcome(error_answer(Conflict(f"key {outcome.key}: {outcome.reason}")), outcome)
    if outcome.status is RotationStatus.IN_PROGRESS:
        return _with_outcome(error_answer(Conflict(f"key {outcome.key}: {outcome.reason}")), outcome)
    if outcome.status is RotationStatus.FAILED:
        # No error means the service made a version unlike the one asked for (the reason lists how it differs).
        error: CmkError = outcome.error or UnexpectedResponse(f"key {outcome.key}: {outcome.reason}")
        return _with_outcome(error_answer(error), outcome)
    return Answer(200, outcome.to_json())


def _with_outcome(answer: Answer, outcome: RotationOutcome) -> Answer:
    return Answer(answer.status, {**answer.body, "rotation": outcome.to_json()}, answer.headers)


REVOCATION_ROUTE = "/api/revocations"


def revocation_answer(outcome: RevocationOutcome) -> Answer:
    """A dry run and an identical earlier revocation answer 200; one carried out now (or resumed), or a
    restoration, 202 with the revocation's Location, where its verification can be followed. A plan that may not
    run answers 409 with the plan; a failure as its error does, with the revocation beside it."""
    body = outcome.to_json()
    if outcome.status in ("executed", "resumed", "restored"):
        return Answer(202, body, {"Location": f"{REVOCATION_ROUTE}/{outcome.revocation.revocation_id}"})
    if outcome.status in ("blocked", "failed"):
        error = outcome.error or Conflict(outcome.status)
        answer = error_answer(error)
        return Answer(answer.status, {**answer.body, **body}, answer.headers)
    return Answer(200, body)
