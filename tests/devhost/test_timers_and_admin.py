"""Timers firing on their NCRONTAB schedule and at start-up, and the admin API (run a non-HTTP function, status,
listing) with its master-key rule."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import requests

from tests.devhost.conftest import FUNCTION_KEY, MASTER_KEY
from tests.devhost.devhost_process import DevHost

ADMIN = {"x-functions-key": MASTER_KEY}


def test_run_on_startup_fires_once_at_start(devhost: DevHost) -> None:
    startup = devhost.wait_for_records("at_startup")
    assert startup[0] == {"function": "at_startup", "past_due": False}


def test_timer_fires_every_two_seconds_on_even_seconds(devhost: DevHost) -> None:
    already = len(devhost.records("every_two_seconds"))
    rows = devhost.wait_for_records("every_two_seconds", count=already + 2, timeout=7)[already:]
    for row in rows:
        assert row["cls"] == "azure.functions.timer.TimerRequest"
        assert row["past_due"] is False
        fired = dt.datetime.fromisoformat(row["schedule_status"]["LastUpdated"])
        scheduled_next = dt.datetime.fromisoformat(row["schedule_status"]["Next"])
        # it fired just after an even second (UTC), and the next run is the following even second
        assert fired.second % 2 == 0 and fired.microsecond < 500_000
        assert scheduled_next == fired.replace(microsecond=0) + dt.timedelta(seconds=2)
    fired_times = [dt.datetime.fromisoformat(row["schedule_status"]["LastUpdated"]) for row in rows]
    assert dt.timedelta(seconds=1.5) < fired_times[1] - fired_times[0] < dt.timedelta(seconds=2.5)


def test_admin_runs_a_timer(devhost: DevHost) -> None:
    before = len(devhost.records("at_startup"))
    response = requests.post(f"{devhost.url}/admin/functions/at_startup", json={"input": ""}, headers=ADMIN, timeout=5)
    assert response.status_code == 202
    rows = devhost.wait_for_records("at_startup", count=before + 1)
    assert rows[-1]["past_due"] is False


def test_admin_runs_a_queue_function_with_the_input_as_body(devhost: DevHost) -> None:
    body = f"admin-{uuid.uuid4()}"
    response = requests.post(
        f"{devhost.url}/admin/functions/work_items", json={"input": body}, headers=ADMIN, timeout=5
    )
    assert response.status_code == 202
    assert devhost.wait_for_records("work_items", lambda row: row["body"] == body)


def test_admin_runs_an_event_grid_function_with_the_input_as_event(devhost: DevHost) -> None:
    event = {"id": str(uuid.uuid4()), "topic": "t", "subject": "s", "eventType": "Kind", "data": {"a": 1}}
    response = requests.post(
        f"{devhost.url}/admin/functions/on_event", json={"input": json.dumps(event)}, headers=ADMIN, timeout=5
    )
    assert response.status_code == 202
    seen = devhost.wait_for_records("on_event", lambda row: row["id"] == event["id"])[0]
    assert (seen["event_type"], seen["data"]) == ("Kind", {"a": 1})


def test_admin_api_needs_the_master_key(devhost: DevHost) -> None:
    url = f"{devhost.url}/admin/functions/at_startup"
    assert requests.post(url, json={}, timeout=5).status_code == 401
    assert requests.post(url, json={}, headers={"x-functions-key": FUNCTION_KEY}, timeout=5).status_code == 401
    assert requests.get(f"{devhost.url}/admin/host/status", timeout=5).status_code == 401


def test_admin_rejects_unknown_and_http_functions(devhost: DevHost) -> None:
    assert requests.post(f"{devhost.url}/admin/functions/nope", json={}, headers=ADMIN, timeout=5).status_code == 404
    assert requests.post(f"{devhost.url}/admin/functions/echo", json={}, headers=ADMIN, timeout=5).status_code == 400
    bad_body = requests.post(f"{devhost.url}/admin/functions/at_startup", data=b"{", headers=ADMIN, timeout=5)
    assert bad_body.status_code == 400


def test_host_status_and_function_listing(devhost: DevHost) -> None:
    status = requests.get(f"{devhost.url}/admin/host/status", headers=ADMIN, timeout=5).json()
    assert status["state"] == "Running"
    assert status["processUptime"] > 0
    listing = requests.get(f"{devhost.url}/admin/functions", headers=ADMIN, timeout=5).json()
    names = {entry["name"]: entry for entry in listing}
    assert names["item_by_id"]["invoke_url_template"] == f"{devhost.url}/api/items/{{id:int}}"
    assert names["work_items"]["invoke_url_template"] == f"{devhost.url}/admin/functions/work_items"
    text = json.dumps(listing)
    assert MASTER_KEY not in text and FUNCTION_KEY not in text
