"""The status page drawn as one self-contained HTML document: no script, no external file, no build step.

Server-rendered so it works offline, prints, and needs nothing from a CDN. Every value is escaped here, in one place
(`_e`), because names come from Azure and from the inventory. Screen readers get landmarks (banner, navigation, main,
contentinfo), one heading per part, tables with captions and header cells, and a state always written as text: colour
only repeats what the words say. The Content-Security-Policy (`CONTENT_SECURITY_POLICY`) allows this page's one style
element by its hash and nothing else: no script can run on it, and no form can post from it.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

from shared.arm_ids import last_segment

STYLE = """
:root { color-scheme: light; --ok: #1b6e20; --bad: #a4161a; --warn: #8a5a00; --muted: #555; --line: #ccc; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 0 1rem 2rem; color: #111; }
header, footer { border-bottom: 1px solid var(--line); padding: .5rem 0; }
footer { border-top: 1px solid var(--line); border-bottom: 0; color: var(--muted); margin-top: 2rem; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .25rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; list-style: none; padding: 0; }
section.key { border: 1px solid var(--line); border-radius: 6px; margin: 1.5rem 0; padding: 0 1rem 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font-size: .9em; overflow-wrap: anywhere; }
.tag { border: 1px solid currentColor; border-radius: 3px; font-size: .85em; font-weight: 600; padding: 0 .3rem; }
.ok { color: var(--ok); } .bad, .critical, .high, .failed, .revoked { color: var(--bad); }
.warning, .pending { color: var(--warn); } .info, .muted { color: var(--muted); }
.current { font-weight: 600; }
progress { width: 20rem; max-width: 100%; height: 1rem; }
@media print {
  nav, .skip { display: none; }
  body { max-width: none; font-size: 11pt; }
  section.key { break-inside: avoid-page; border: 0; padding: 0; }
  th { background: none; }
  .ok, .bad, .critical, .high, .failed, .revoked, .warning, .pending { color: #000; }
}
"""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _e(value: Any) -> str:
    """Every value on the page passes here: escaped for text and for attributes alike."""
    return html.escape("" if value is None else str(value), quote=True)


def _anchor(name: str) -> str:
    return "key-" + "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower())


def _tag(text: str, css: str) -> str:
    return f'<span class="tag {_e(css)}">{_e(text)}</span>'


def _table(caption: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    """`rows` hold HTML already escaped cell by cell; the first cell of each row is its row header."""
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + f'<th scope="row">{row[0]}</th>' + "".join(f"<td>{cell}</td>" for cell in row[1:]) + "</tr>"
        for row in rows
    )
    return f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _error(part: Any) -> str | None:
    return part.get("error") if isinstance(part, dict) else None


def render_status(view: dict[str, Any], *, viewer: str = "") -> str:
    keys = view.get("keys", [])
    summary = view.get("summary") or {}
    findings = summary.get("findings") or {}
    counts = ", ".join(f"{n} {s}" for s, n in findings.items()) or "none"
    nav = "".join(
        f'<li><a href="#{_e(_anchor(k["name"]))}">{_e(k["name"])}</a> '
        f"{_tag('compliant', 'ok') if k.get('compliant') else _tag('not compliant', 'bad')}</li>"
        for k in keys
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        "<title>cmk-guardian status</title>",
        f"<style>{STYLE}</style></head><body>",
        '<a class="skip" href="#main">Skip to the keys</a>',
        "<header><h1>cmk-guardian status</h1>",
        f"<p>{_e(summary.get('keys', len(keys)))} keys, {_e(summary.get('compliant', 0))} compliant; "
        f"findings: {_e(counts)}. Mode: <strong>{_e(view.get('mode'))}</strong>. "
        f"Inventory: <code>{_e(view.get('inventory'))}</code>.</p>",
        f"<p>As of <time>{_e(view.get('generated_at'))}</time> (the app's clock)"
        + (f"; viewed by {_e(viewer)}" if viewer else "")
        + ". This page only reads: nothing on it changes anything.</p></header>",
        f'<nav aria-label="Keys"><ul>{nav}</ul></nav>',
        '<main id="main">',
        *(_key_section(k) for k in keys),
        _audit_section(view.get("audit") or {}),
        _alerts_section(view.get("alerts") or {}),
        "</main>",
        "<footer><p>cmk-guardian. The same data as JSON: <code>GET /api/keys</code>, <code>/api/keys/{name}</code>, "
        "<code>/api/audit</code>, <code>/api/alerts</code>.</p></footer>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _key_section(key: dict[str, Any]) -> str:
    name = key["name"]
    anchor = _anchor(name)
    compliant = _tag("compliant", "ok") if key.get("compliant") else _tag("not compliant", "bad")
    state = "enabled" if key.get("enabled") else ("disabled" if key.get("enabled") is False else "unknown")
    dependents = key.get("dependents") or {}
    return "".join(
        [
            f'<section class="key" id="{_e(anchor)}" aria-labelledby="{_e(anchor)}-h">',
            f'<h2 id="{_e(anchor)}-h">Key {_e(name)} {compliant}</h2>',
            f"<p>Vault <code>{_e(key.get('vault'))}</code>, service {_e(key.get('service'))}; current version "
            f"<code>{_e(key.get('version'))}</code> ({_e(state)}), expires {_e(key.get('expires') or 'never')}.</p>",
            _findings(name, key.get("findings") or []),
            _versions(name, key.get("versions")),
            _consumers(name, dependents),
            _rewrap(name, dependents),
            _quarantine(name, dependents.get("quarantined")),
            _revocations(name, key.get("revocations") or []),
            "</section>",
        ]
    )


def _findings(name: str, findings: list[dict[str, Any]]) -> str:
    rows = [
        [
            _tag(str(f.get("severity", "")).upper(), str(f.get("severity", ""))),
            f"<code>{_e(f.get('code'))}</code>",
            _e(f.get("message")),
        ]
        for f in findings
    ]
    table = _table(f"Findings of {name}, most severe first", ["Severity", "Finding", "What"], rows, "No findings.")
    return f"<h3>Findings</h3>{table}"


def _versions(name: str, versions: Any) -> str:
    if _error(versions):
        return f'<h3>Versions</h3><p class="bad">{_e(_error(versions))}</p>'
    rows = []
    for v in versions or []:
        state = v["state"] + (f" ({v['revocation_id']})" if v.get("revocation_id") else "")
        css = {"current": "ok current", "disabled by a revocation": "revoked", "retired": "muted"}.get(v["state"], "")
        expires = _e(v.get("expires") or "never") + (" " + _tag("expired", "bad") if v.get("expired") else "")
        rows.append(
            [
                f'<code class="{"current" if v.get("current") else ""}">{_e(v["version"])}</code>',
                _tag(state, css),
                f"<time>{_e(v.get('created'))}</time>",
                expires,
                _e(v.get("deks", 0)),
                _e(", ".join(v.get("consumers") or []) or "none"),
            ]
        )
    table = _table(
        f"Versions of {name}, newest first",
        ["Version", "State", "Created", "Expires", "DEKs", "Consumers on it"],
        rows,
        "No versions found.",
    )
    return f"<h3>Versions</h3>{table}"


def _consumers(name: str, dependents: dict[str, Any]) -> str:
    rows = []
    for c in dependents.get("consumers") or []:
        if c.get("error") and not c.get("version"):
            state = _tag(f"unreadable: {c['error']}", "bad")
        elif c.get("available") is False:
            state = _tag("unavailable", "bad") + (f" {_e(c.get('error'))}" if c.get("error") else "")
        else:
            state = _tag("available", "ok")
        identities = "; ".join(
            _e(i["label"]) + (" " + _tag("revoked", "revoked") if i.get("revoked") else "")
            for i in c.get("identities") or []
        )
        rows.append(
            [
                f"<code>{_e(last_segment(c.get('resource_id') or ''))}</code>",
                _e(c.get("kind")),
                f"<code>{_e(c.get('version') or 'none')}</code>"
                + (" (follows latest)" if c.get("follows_latest") else ""),
                state,
                identities or "none reported",
            ]
        )
    deks = dependents.get("deks_by_version")
    dek_text = ""
    if _error(dependents.get("deks")):
        dek_text = f'<p class="bad">DEK registry: {_e(_error(dependents.get("deks")))}</p>'
    elif isinstance(deks, dict):
        per = ", ".join(f"{n} on {v}" for v, n in deks.items()) or "none"
        dek_text = f"<p>DEKs in the registry: {_e(sum(deks.values()))} ({_e(per)}).</p>"
    table = _table(
        f"Consumers of {name}",
        ["Resource", "Kind", "Version it uses", "State", "Identities it uses"],
        rows,
        "No Azure resource uses this key.",
    )
    return f"<h3>Dependents</h3>{dek_text}{table}"


def _rewrap(name: str, dependents: dict[str, Any]) -> str:
    rewrap = dependents.get("rewrap")
    if not isinstance(rewrap, dict):
        return ""
    processed, remaining = int(rewrap.get("processed", 0)), int(rewrap.get("remaining", 0))
    total = processed + remaining
    if not total:
        return f'<h3>Re-wrap</h3><p class="muted">No re-wrap in flight for {_e(name)}.</p>'
    percent = round(100 * processed / total)
    rate = rewrap.get("rate_per_minute")
    running = "running" if rewrap.get("running") else "not running"
    return (
        "<h3>Re-wrap</h3>"
        f'<p><label for="{_e(_anchor(name))}-rewrap">Re-wrap to version <code>{_e(rewrap.get("target_version"))}'
        f"</code>: {_e(percent)}% ({_e(running)})</label><br>"
        f'<progress id="{_e(_anchor(name))}-rewrap" max="{_e(total)}" value="{_e(processed)}">{_e(percent)}%'
        "</progress></p>"
        f"<p>Processed {_e(processed)}, succeeded {_e(rewrap.get('succeeded', 0))}, failed "
        f"{_e(rewrap.get('failed', 0))}, remaining {_e(remaining)}; rate "
        f"{_e(f'{rate} DEKs a minute' if rate is not None else 'not measured yet')}.</p>"
    )


def _quarantine(name: str, quarantined: Any) -> str:
    """The DEKs the re-wrap refused: they stay on their version until they move or an operator releases them, so an
    operator must see them here rather than wonder why a re-wrap never reaches 100%."""
    if not isinstance(quarantined, dict):
        return ""
    if quarantined.get("error"):
        error = _e(quarantined["error"])
        return f'<h3>Quarantined DEKs</h3><p class="bad">the quarantine could not be read: {error}</p>'
    deks = quarantined.get("deks") or []
    rows = [
        [f"<code>{_e(d.get('dek_id'))}</code>", _e(d.get("partition")), f"<code>{_e(d.get('version'))}</code>",
         _e(d.get("reason")), _e(d.get("since"))]
        for d in deks
    ]  # fmt: skip
    count = int(quarantined.get("count", len(deks)) or 0)
    more = f'<p class="muted">{_e(count - len(deks))} more not listed.</p>' if count > len(deks) else ""
    table = _table(
        f"DEKs of {name} the re-wrap refused ({count})",
        ["DEK", "Shard", "Version", "Why", "Since"],
        rows,
        "No DEK in quarantine.",
    )
    return f"<h3>Quarantined DEKs</h3>{table}{more}"


def _revocations(name: str, revocations: list[dict[str, Any]]) -> str:
    if revocations and revocations[0].get("error"):
        return f'<h3>Revocations in force</h3><p class="bad">{_e(revocations[0]["error"])}</p>'
    rows = [
        [
            f"<code>{_e(r.get('id'))}</code>",
            _e(r.get("action")),
            (_e(r.get("principal")) + " " + _tag("revoked", "revoked")) if r.get("principal") else "every version",
            _e(r.get("state")),
        ]
        for r in revocations
    ]
    table = _table(
        f"Revocations in force on {name}",
        ["Revocation", "Action", "Whom", "State"],
        rows,
        "No revocation in force.",
    )
    return f"<h3>Revocations in force</h3>{table}"


def _audit_section(audit: dict[str, Any]) -> str:
    if _error(audit):
        body = f'<p class="bad">{_e(_error(audit))}</p>'
    else:
        rows = [
            [
                f"<time>{_e(r.get('at'))}</time>",
                _e(r.get("key")),
                _e(r.get("action")),
                _tag(r.get("outcome") or "", "failed" if r.get("outcome") == "failed" else ""),
                _e(r.get("trigger")),
            ]
            for r in audit.get("records") or []
        ]
        body = _table(
            "Latest audit records, newest first",
            ["At", "Key", "Action", "Outcome", "By"],
            rows,
            "No audit records yet.",
        )
    return f'<section aria-labelledby="audit-h"><h2 id="audit-h">Latest audit records</h2>{body}</section>'


def _alerts_section(alerts: dict[str, Any]) -> str:
    if _error(alerts):
        body = f'<p class="bad">{_e(_error(alerts))}</p>'
    else:
        rows = [
            [
                f"<time>{_e(a.get('queued_at'))}</time>",
                _tag(str(a.get("severity", "")).upper(), str(a.get("severity", ""))),
                f"<code>{_e(a.get('type'))}</code>",
                _e(a.get("message")),
                _tag(a.get("state") or "", a.get("state") or "") + (f" {_e(a.get('error'))}" if a.get("error") else ""),
            ]
            for a in alerts.get("alerts") or []
        ]
        body = _table(
            "Latest alerts, newest first",
            ["Queued", "Severity", "Type", "Message", "Delivery"],
            rows,
            "No alerts sent yet.",
        )
    return f'<section aria-labelledby="alerts-h"><h2 id="alerts-h">Latest alerts</h2>{body}</section>'
