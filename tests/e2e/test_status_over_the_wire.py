"""What operators see, over the wire, on a local system of its own after a rotation, a revocation and five more
rotations: one key (`GET /api/keys/{name}`), the revocation found by `GET /api/audit?action=revocation` behind
every record the rotations wrote, an alert that was sent in `GET /api/alerts`, an unknown query parameter refused
before anything changes, and the status page as a person sees it in headless Chromium (Debian's, driven by Playwright):
both keys, the new version on the timeline, the revoked identity marked, nothing to press, and no console errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localrun.system import LocalSystem
from tests.e2e.conftest import Wire, fresh_system, wait_until

pytestmark = pytest.mark.e2e

MYSQL, AKS = "mysql-encryption-key", "aks-encryption-key"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Scene:
    system: LocalSystem
    wire: Wire
    revocation_id: str
    mysql_principal: str
    mysql_version: str  # the MySQL key's version made by the first rotation
    aks_version: str  # the AKS key's current version after the five rotations


def _versions(wire: Wire) -> dict[str, str]:
    return {k["name"]: k["version"] for k in wire.keys()["keys"]}


def _rotate(wire: Wire, key: str, reason: str) -> str:
    response = wire.post("/api/rotations", json={"key": key, "reason": reason})
    assert response.status_code == 201, response.text
    return response.json()["new_version"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with fresh_system(tmp_path_factory.mktemp("status")) as system:
        wire = Wire(system)
        mysql_version = _rotate(wire, MYSQL, "e2e: a rotation before the revocation")
        revoked = wire.post(
            "/api/revocations",
            json={"key": MYSQL, "service": "mysql", "action": "revoke-access", "reason": "e2e", "dry_run": False},
        )
        assert revoked.status_code == 202, revoked.text
        aks_version = ""
        for n in range(5):
            aks_version = _rotate(wire, AKS, f"e2e: rotation {n + 1} after the revocation")
        yield Scene(
            system,
            wire,
            revoked.json()["id"],
            revoked.json()["principal_id"],
            mysql_version,
            aks_version,
        )


def test_one_key_is_answered_with_its_versions_and_an_unknown_one_is_404_naming_it(scene):
    response = scene.wire.get(f"/api/keys/{MYSQL}")
    assert response.status_code == 200, response.text
    key = response.json()
    assert key["name"] == MYSQL and key["version"] == scene.mysql_version
    assert key["versions"][0] == {**key["versions"][0], "version": scene.mysql_version, "state": "current"}
    assert len(key["versions"]) >= 2
    assert [r["id"] for r in key["revocations"]] == [scene.revocation_id]
    assert key["revocations"][0]["principal"].startswith("mysql identity (")
    unknown = scene.wire.get("/api/keys/no-such-key")
    assert unknown.status_code == 404
    assert "no-such-key" in unknown.json()["error"]["message"]


def test_the_revocation_is_found_by_its_action_after_five_rotations(scene):
    response = scene.wire.get("/api/audit?action=revocation")
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert records and {r["action"] for r in records} == {"revocation"}
    assert any(scene.revocation_id in str(r) for r in records), records
    rotations = scene.wire.get(f"/api/audit?action=rotate&outcome=rotated&key={AKS}").json()["records"]
    assert rotations[0]["to_version"] == scene.aks_version and len(rotations) == 5


def test_an_alert_that_was_sent_is_listed_with_its_delivery_state(scene):
    def sent() -> list[dict]:
        response = scene.wire.get("/api/alerts?state=sent")
        assert response.status_code == 200, response.text
        return [a for a in response.json()["alerts"] if a["type"] == "CmkGuardian.Revocation.AccessRevoked"]

    [alert] = wait_until(sent, what="the revocation's alert to be sent")
    assert alert["key"] == MYSQL and alert["attempts"] >= 1 and alert["error"] is None
    events = scene.system.cloud.admin("GET", "/eventgrid/topic-events")["value"]
    assert any(e["type"] == alert["type"] and (e.get("data") or {}).get("key") == MYSQL for e in events)


def test_an_unknown_query_parameter_is_refused_and_rotates_nothing(scene):
    before = _versions(scene.wire)
    response = scene.wire.post("/api/rotations?foo=bar", json={"key": MYSQL, "reason": "e2e: must not rotate"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "foo"
    for path in ("/api/keys?key=x", "/api/status?verbose=1", "/api/alerts?since=1", f"/api/keys/{MYSQL}?x=1"):
        refused = scene.wire.get(path)
        assert refused.status_code == 400, (path, refused.text)
    assert _versions(scene.wire) == before


def test_the_local_runs_guide_opens_with_the_status_page(scene):
    from localrun.__main__ import guide

    text = guide(scene.system)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[1].startswith("Status page") and "/api/status?code=" in lines[1]
    # The status page is opened in a browser, not a shell step: the guide's commands are as before (its own test
    # runs them in order, tests/e2e/test_run_command.py).
    steps = re.findall(r"^\s+\$ (.+)$", text, re.MULTILINE)
    assert len(steps) == 16 and steps[0].endswith("/api/keys")
    link = re.search(r"(http://\S+/api/status\?code=\S+)", lines[1]).group(1)
    import requests

    page = requests.get(link, timeout=60)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")


def test_the_status_page_in_a_browser_shows_what_a_person_needs_and_no_errors(scene):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "the browser test needs Debian's chromium: scripts/setup installs it as root"
    url = f"{scene.wire.url}/api/status?code={scene.system.devhost['function_key']}"
    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            response = page.goto(url, wait_until="load", timeout=60_000)
            assert response is not None and response.status == 200
            assert page.title() == "cmk-guardian status"

            # Both keys, each a titled region a screen reader can jump to.
            for key in (AKS, MYSQL):
                assert page.get_by_role("heading", name=re.compile(f"^Key {key}")).is_visible()
            assert page.get_by_role("main").is_visible() and page.get_by_role("navigation").is_visible()

            # The new version on the timeline, written as current.
            versions = page.get_by_role("table", name=f"Versions of {AKS}, newest first")
            newest = versions.get_by_role("row").nth(1)
            assert scene.aks_version in newest.inner_text() and "current" in newest.inner_text()
            assert versions.get_by_role("row").count() >= 7  # header + the first version + five rotations

            # The revoked identity marked, in words.
            revocations = page.get_by_role("table", name=f"Revocations in force on {MYSQL}")
            row = revocations.get_by_role("row").nth(1).inner_text()
            assert scene.revocation_id in row and "revoked" in row
            assert f"mysql identity ({scene.mysql_principal[:4]}…)" in row

            # Below the keys: the latest audit records and alerts. Nothing to press.
            assert page.get_by_role("heading", name="Latest audit records").is_visible()
            assert page.get_by_role("heading", name="Latest alerts").is_visible()
            assert page.get_by_role("button").count() == 0 and page.locator("form, input, script").count() == 0

            # Printable: the print style hides the navigation and keeps the keys.
            page.emulate_media(media="print")
            assert not page.get_by_role("navigation").is_visible()
            assert page.get_by_role("heading", name=re.compile(f"^Key {MYSQL}")).is_visible()
        finally:
            browser.close()
    assert console_errors == [] and page_errors == [] and failed == [], (console_errors, page_errors, failed)


OPERATOR_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STRANGER_ID = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"


def signed_in(object_id: str, name: str) -> dict[str, str]:
    """X-MS-CLIENT-PRINCIPAL as App Service authentication writes it (base64 JSON of the caller's claims)."""
    import base64
    import json

    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id},
        {"typ": "preferred_username", "val": name},
    ]
    document = {"auth_typ": "aad", "name_typ": "preferred_username", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(document).encode()).decode()}


def test_behind_app_service_authentication_a_signed_in_operator_opens_the_page_without_the_key(tmp_path):
    import requests

    with fresh_system(
        tmp_path, CMK_LOCAL_RUN="false", WEBSITE_AUTH_ENABLED="true", CMK_OPERATORS=OPERATOR_ID
    ) as system:
        url = f"{system.devhost['url']}/api/status"
        operator = requests.get(url, headers=signed_in(OPERATOR_ID, "olga@contoso.example"), timeout=60)
        assert operator.status_code == 200, operator.text
        assert f"viewed by olga@contoso.example ({OPERATOR_ID})" in operator.text
        for headers in ({}, signed_in(STRANGER_ID, "olga@contoso.example")):  # nobody; a name is no credential
            refused = requests.get(url, headers=headers, timeout=60)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "CallerNotAllowed"
        # Every other route still needs the function key at the host.
        assert requests.get(f"{system.devhost['url']}/api/keys", timeout=60).status_code == 401
