"""The status page and the per-key view over fakes, after a rotation and a revocation: what a person would read.

The HTML is checked as a screen reader and a browser meet it: landmarks, headings, tables with header cells, states
written as words, every value escaped, no script and nothing that changes anything."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from functions.api import alerts_list, key_detail, principal_label, status_page, status_view
from functions.api.status_html import CONTENT_SECURITY_POLICY, STYLE
from functions.revocation import revoke
from functions.rotation.triggers import rotate_now
from shared.alertlog import AlertState
from shared.alerts import OutboxAlerts
from shared.audit import AuditRecord
from shared.errors import ServiceUnavailable
from shared.http.commands import AlertsQuery, RevokeCommand, RotateCommand
from shared.inventory.model import UnknownKey
from shared.model import Alert, Severity
from tests.fakes.alertlog import FakeAlertLog
from tests.fakes.outbound import FakeWorkQueue

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


def _ports(world, alert_log=None) -> dict:
    return {
        **world.ports(),
        "dekstore": world.dekstore,
        "consumers": world.consumers,
        "audit": world.audit,
        "revocations": world.revocations,
        **({"alert_log": alert_log} if alert_log is not None else {}),
    }


@pytest.fixture
def rotated_and_revoked(world):
    """The browser test's scene: the MySQL key rotated by an operator, then the MySQL identity revoked from it."""
    old = world.vault.get_key(world.key(MYSQL).ref).version
    rotate_now(RotateCommand(MYSQL, "drill", caller="alice"), inventory=world.inventory, **world.rotation_ports())
    new = world.vault.get_key(world.key(MYSQL).ref).version
    command = RevokeCommand(MYSQL, "revoke-access", "drill", "alice", service="mysql", dry_run=False)
    revocation = revoke(command, **world.revocation_ports(FakeWorkQueue(), follow_up_delay=60)).revocation
    return old, new, revocation


def test_one_key_answers_with_its_versions_on_a_timeline_and_the_revoked_identity_named(world, rotated_and_revoked):
    old, new, revocation = rotated_and_revoked
    body = key_detail(MYSQL, **_ports(world))
    assert body["name"] == MYSQL and body["version"] == new
    assert [(v["version"], v["state"], v["current"]) for v in body["versions"]] == [
        (new, "current", True),
        (old, "previous", False),
    ]
    [server] = body["dependents"]["consumers"]
    assert server["identities"] == [
        {
            "principal_id": revocation.principal_id,
            "label": f"mysql identity ({revocation.principal_id[:4]}…)",
            "revoked": True,
        }
    ]
    [in_force] = body["revocations"]
    assert in_force["id"] == revocation.revocation_id and in_force["principal"].startswith("mysql identity")
    assert body["findings"] == sorted(
        body["findings"], key=lambda f: ["critical", "high", "warning", "info"].index(f["severity"])
    )


def test_an_unknown_key_is_404_naming_it_before_anything_is_read(world):
    class NoVault:
        def __getattr__(self, name):
            pytest.fail("the vault was read for an unknown key")

    with pytest.raises(UnknownKey, match="no-such-key"):
        key_detail("no-such-key", **{**_ports(world), "vault": NoVault()})


def test_principals_are_named_with_their_role_in_the_inventory(world):
    inventory = world.inventory
    assert principal_label(inventory, inventory.app_identity).startswith("this app (")
    assert principal_label(inventory, world.key(AKS).identity.principal_id).startswith("aks identity (")
    if inventory.break_glass:
        assert principal_label(inventory, inventory.break_glass[0].principal_id).startswith("break-glass (")
    stranger = str(uuid.uuid4())
    assert principal_label(inventory, stranger) == stranger


def test_a_retired_version_and_a_disabled_key_read_as_such(world):
    ref = world.key(AKS).ref
    first = world.vault.get_key(ref).version
    world.clock.advance(timedelta(minutes=1))
    world.vault.rotate_key(ref)
    world.vault.update_version(ref, first, enabled=False)
    states = {v["version"]: v["state"] for v in key_detail(AKS, **_ports(world))["versions"]}
    assert states[first] == "retired"
    command = RevokeCommand(AKS, "disable-key", "shred", "alice", dry_run=False, confirm=AKS)
    revoke(command, **world.revocation_ports(FakeWorkQueue(), follow_up_delay=60))
    versions = key_detail(AKS, **_ports(world))["versions"]
    assert {v["state"] for v in versions} == {"disabled by a revocation"}
    assert all(v["revocation_id"] for v in versions)


class Page(HTMLParser):
    """What a screen reader and a browser find: landmarks, headings, table header cells, elements, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.landmarks: set[str] = set()
        self.headings: list[str] = []
        self.text: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("header", "nav", "main", "footer"):
            self.landmarks.add(tag)
        if tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_heading:
            self.headings[-1] += data


def _read(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_the_page_shows_both_keys_the_new_version_and_the_revoked_identity_in_words(world, rotated_and_revoked):
    old, new, revocation = rotated_and_revoked
    html = status_page("alice", **_ports(world))
    page = _read(html)
    text = " ".join(page.text)
    assert {"header", "nav", "main", "footer"} <= page.landmarks
    assert page.headings[0] == "cmk-guardian status"
    assert any(h.startswith(f"Key {AKS}") for h in page.headings)
    assert any(h.startswith(f"Key {MYSQL}") for h in page.headings)
    assert {"Findings", "Versions", "Dependents", "Revocations in force", "Latest audit records", "Latest alerts"} <= {
        h.strip() for h in page.headings
    }
    assert new in text and old in text and "current" in text
    assert "revoked" in text and f"mysql identity ({revocation.principal_id[:4]}…)" in text
    assert page.tags.count("caption") == page.tags.count("table") > 0
    assert 'scope="col"' in html and 'scope="row"' in html
    assert "viewed by alice" in text


def test_the_page_only_reads_and_runs_nothing(world, rotated_and_revoked):
    html = status_page(**_ports(world))
    tags = set(_read(html).tags)
    assert not tags & {"script", "form", "button", "input", "iframe", "object", "embed"}
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handler
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY
    assert f"<style>{STYLE}</style>" in html
    assert "@media print" in STYLE


def test_every_value_from_azure_or_the_trail_is_escaped(world):
    evil = '<script>alert("x")</script>'
    world.audit.append(AuditRecord(uuid.uuid4().hex, world.clock.now(), "rotate", evil, AKS, "rotated"))
    log = FakeAlertLog()
    alert = Alert("CmkGuardian.Key.Rotated", f"/keys/{evil}", Severity.HIGH, f"message {evil}", {"key": AKS})
    OutboxAlerts(FakeWorkQueue(), log, world.clock).publish(alert)
    html = status_page(f"<b>{evil}</b>", **_ports(world, log))
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_the_latest_alerts_with_their_delivery_state(world):
    log = FakeAlertLog()
    outbox = OutboxAlerts(FakeWorkQueue(), log, world.clock)
    for n in range(3):
        world.clock.advance(timedelta(seconds=1))
        outbox.publish(Alert("CmkGuardian.Key.Rotated", f"/keys/{AKS}", Severity.INFO, f"rotated {n}", {"key": AKS}))
    view = status_view(**_ports(world, log))
    assert [a["message"] for a in view["alerts"]["alerts"]] == ["rotated 2", "rotated 1", "rotated 0"]
    assert {a["state"] for a in view["alerts"]["alerts"]} == {"pending"}
    assert alerts_list(AlertsQuery(state="sent"), alert_log=log) == {"alerts": []}
    assert len(alerts_list(AlertsQuery(limit=2), alert_log=log)["alerts"]) == 2
    assert AlertState.PENDING.value in status_page(**_ports(world, log))


def test_a_part_that_cannot_be_read_says_so_in_place(world):
    class DownLog(FakeAlertLog):
        def recent(self, **kw):
            raise ServiceUnavailable("table down")

    class DownTrail:
        """Down for the page's own read of the latest records (the key report's reads are its own business)."""

        def page(self, **kw):
            if kw.get("key") is None:
                raise ServiceUnavailable("table down")
            return world.audit.page(**kw)

        def append(self, record):
            return record

    ports = {**_ports(world, DownLog()), "audit": DownTrail()}
    view = status_view(**ports)
    assert view["alerts"] == {"error": "ServiceUnavailable: the alert log could not be read"}
    assert view["audit"]["error"].startswith("ServiceUnavailable")
    html = status_page(**ports)
    assert "the alert log could not be read" in html and "the audit trail could not be read" in html
    assert len(view["keys"]) == 2


def test_a_rewrap_in_flight_is_a_progress_bar_with_its_counts_and_rate(world):
    from functions.api.status_html import render_status

    rewrap = {"target_version": "v2", "processed": 250, "succeeded": 248, "failed": 2, "remaining": 750}
    view = {
        "keys": [
            {
                "name": MYSQL,
                "compliant": True,
                "versions": [],
                "dependents": {"rewrap": {**rewrap, "running": True, "rate_per_minute": 250.0}},
            }
        ]
    }
    html = render_status(view)
    assert '<progress id="key-mysql-encryption-key-rewrap" max="1000" value="250">25%</progress>' in html
    text = " ".join(_read(html).text)
    assert "Processed 250, succeeded 248, failed 2, remaining 750; rate 250.0 DEKs a minute." in text
    assert "25% (running)" in text


def test_quarantined_deks_are_listed_with_why_and_the_rest_counted(world):
    from functions.api.status_html import render_status

    quarantined = {
        "count": 3,
        "deks": [
            {"partition": "p4", "dek_id": "d-<1>", "version": "v1", "reason": "KcvMismatch", "since": "2026-12-01"}
        ],
    }
    view = {"keys": [{"name": MYSQL, "versions": [], "dependents": {"quarantined": quarantined}}]}
    html = render_status(view)
    assert "<code>d-&lt;1&gt;</code>" in html  # escaped like every value from the registry
    text = " ".join(_read(html).text)
    assert "DEKs of mysql-encryption-key the re-wrap refused (3)" in text
    assert "KcvMismatch" in text and "2 more not listed." in text
    empty = render_status({"keys": [{"name": MYSQL, "versions": [], "dependents": {"quarantined": {"count": 0}}}]})
    assert "No DEK in quarantine." in " ".join(_read(empty).text)
    down = render_status({"keys": [{"name": MYSQL, "versions": [], "dependents": {"quarantined": {"error": "X"}}}]})
    assert "the quarantine could not be read: X" in " ".join(_read(down).text)
