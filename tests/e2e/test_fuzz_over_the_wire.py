"""The fuzz campaign, bounded: schemathesis over the served OpenAPI document, and generated and mutated Event Grid
events over the webhooks, against a local system of its own (tests/support/fuzz_campaign.py says what is checked).

`CMK_FUZZ_EXAMPLES` sets the cases per operation and generation mode (default 25, about a minute here); the full-size
campaign is `bench/fuzz.py --examples 1000`.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import fresh_system
from tests.support.fuzz_campaign import campaign

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CMK_FUZZ_EXAMPLES", "25"))


@pytest.mark.timeout(900)
def test_no_request_crashes_breaks_the_document_or_changes_state_when_refused(tmp_path):
    with fresh_system(tmp_path) as system:
        # Key changes complete at once here: the app still waits on their poller inside its Event Grid handler, so
        # with Azure's minutes its on-purpose rotation would change state long after the campaign judged it settled.
        system.cloud.admin("PUT", "/arm/operations", {"duration_seconds": 0})
        summary = campaign(system, examples=EXAMPLES, seed=12)
    print(json.dumps(summary))
    # The fingerprint saw the one rotation sent on purpose: the state checks below can fail.
    assert "key:mysql-encryption-key" in summary["fingerprint_sees_rotation"]
    for route, counts in summary["routes"].items():
        assert counts["server_errors"] == 0, (route, counts["violations"])
        assert counts["state_changes"] == 0, (route, counts["violations"])
        assert counts.get("nonconforming", 0) == 0, (route, counts["violations"])
        assert counts.get("refused_valid", 0) == 0, (route, counts["violations"])
        assert counts.get("not_rejected", 0) == 0, (route, counts["violations"])
        assert counts["requests"] >= EXAMPLES, route
    api = {route: counts for route, counts in summary["routes"].items() if route.startswith(("GET", "POST /api"))}
    assert set(api) == {
        "GET /api/keys",
        "GET /api/keys/{name}",
        "GET /api/alerts",
        "GET /api/status",
        "POST /api/rotations",
        "GET /api/audit",
        "GET /api/openapi.json",
        "POST /api/revocations",
        "GET /api/revocations/{id}",
        "POST /api/restorations",
        "POST /api/quarantine/release",
    }
    refused = summary["routes"]["POST /api/rotations"]["statuses"]
    assert {"400", "401", "404", "415"} <= set(refused)  # the campaign reached every kind of refusal
    hooks = [counts for route, counts in summary["routes"].items() if "webhooks" in route]
    assert all(h["rejected_logged"] > 0 and h["must_reject"] > 0 for h in hooks)
