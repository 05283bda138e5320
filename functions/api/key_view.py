"""One key as an operator looks at it: `GET /api/keys/{name}` and each key's section of the status page.

It is `GET /api/keys`'s entry for the key (findings, dependents, revocations in force) plus what that list leaves out:
every version on a timeline (created, current, expiry, retired, disabled by a revocation), each with what depends on
it (DEKs and the consumers that point at it), and every principal named with its role in the inventory ("mysql
identity", "this app", "break-glass"), so a revoked identity reads as who it is, not as a bare GUID.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.api.key_status import keys_status
from shared.arm_ids import last_segment
from shared.errors import CmkError
from shared.timestamps import iso_utc

SEVERITY_ORDER = ("critical", "high", "warning", "info")


def principal_label(inventory: Any, principal_id: str | None) -> str:
    """`mysql identity (8e2c…)`, `this app (ecc5…)`, `break-glass (…)`, or the bare id of a principal the inventory
    does not name. Labels come from the inventory, never from the caller."""
    if not principal_id:
        return "unknown principal"
    pid = principal_id.lower()
    short = f"{pid[:4]}…" if len(pid) > 8 else pid
    if pid == (inventory.app_identity or "").lower():
        return f"this app ({short})"
    services = sorted({k.service for k in inventory.keys if k.identity.principal_id == pid})
    if services:
        return f"{', '.join(services)} identity ({short})"
    if any(p.principal_id == pid for p in inventory.break_glass):
        return f"break-glass ({short})"
    return pid


def key_view(key_json: dict[str, Any], managed: Any, *, inventory: Any, vault: Any, now: datetime) -> dict[str, Any]:
    """`key_json` (an entry of `GET /api/keys`) with `versions`, principals labelled, findings ordered by severity."""
    view = dict(key_json)
    view["findings"] = sorted(key_json.get("findings") or [], key=_severity_rank)
    revocations = [
        {**r, "principal": principal_label(inventory, r.get("principal_id")) if r.get("principal_id") else None}
        for r in key_json.get("revocations") or []
    ]
    view["revocations"] = revocations
    revoked = {r["principal_id"].lower() for r in revocations if r.get("principal_id")}
    dependents = dict(key_json.get("dependents") or {})
    dependents["consumers"] = [
        {
            **c,
            "identities": [
                {"principal_id": p, "label": principal_label(inventory, p), "revoked": p.lower() in revoked}
                for p in c.get("identities") or []
            ],
        }
        for c in dependents.get("consumers") or []
    ]
    view["dependents"] = dependents
    view["versions"] = _versions(view, managed, vault=vault, now=now)
    return view


def _severity_rank(finding: dict[str, Any]) -> int:
    severity = finding.get("severity")
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _versions(view: dict[str, Any], managed: Any, *, vault: Any, now: datetime) -> list[dict[str, Any]] | dict:
    """Newest first. A version is `current` (what the vault serves), `disabled by a revocation` (a disable-key in
    force), `retired` (disabled after it was replaced), or `previous` (still enabled). A read error says so in place."""
    try:
        versions = vault.list_versions(managed.ref)
    except CmkError as exc:
        return {"error": f"{exc.code}: the key's versions could not be read"}
    shredding = [r for r in view["revocations"] if r.get("action") == "disable-key"]
    dependents = view["dependents"]
    deks = dependents.get("deks_by_version") or {}
    by_version: dict[str, list[str]] = {}
    for consumer in dependents.get("consumers") or []:
        if consumer.get("version"):
            by_version.setdefault(consumer["version"], []).append(last_segment(consumer["resource_id"]))
    current = view.get("version")
    floor = datetime.min.replace(tzinfo=now.tzinfo)
    timeline = []
    # Newest first; of versions made in the same instant, the one the vault serves first.
    for v in sorted(versions, key=lambda v: (v.created or floor, v.version == current), reverse=True):
        is_current = v.version == current
        if not v.enabled and shredding:
            state = "disabled by a revocation"
        elif is_current:
            state = "current"
        elif not v.enabled:
            state = "retired"
        else:
            state = "previous"
        timeline.append(
            {
                "version": v.version,
                "state": state,
                "current": is_current,
                "enabled": v.enabled,
                "created": iso_utc(v.created) if v.created else None,
                "expires": iso_utc(v.expires) if v.expires else None,
                "expired": bool(v.expires and v.expires <= now),
                "revocation_id": shredding[0].get("id") if state == "disabled by a revocation" else None,
                "deks": int(deks.get(v.version, 0)) if isinstance(deks, dict) else 0,
                "consumers": sorted(by_version.get(v.version, [])),
            }
        )
    return timeline


def one_key(
    name: str,
    *,
    inventory: Any,
    vault: Any,
    clock: Any,
    status: dict[str, Any],
) -> dict[str, Any]:
    """The view of key `name` out of a `GET /api/keys` body. UnknownKey (404, naming the key) for a key the
    inventory does not manage."""
    managed = inventory.key(name)
    for key_json, candidate in zip(status["keys"], inventory.keys, strict=True):
        if candidate is managed:
            body = key_view(key_json, managed, inventory=inventory, vault=vault, now=clock.now())
            return {"mode": status.get("mode"), "generated_at": status.get("generated_at"), **body}
    raise AssertionError("the report covers every inventory key")  # pragma: no cover


def key_detail(
    name: str,
    *,
    inventory: Any,
    vault: Any,
    access: Any,
    roles: Any,
    vault_settings: Any,
    clock: Any,
    dekstore: Any,
    consumers: Any,
    audit: Any,
    revocations: Any = None,
) -> dict[str, Any]:
    """`GET /api/keys/{name}`: the key is resolved first, so an unknown name is 404 before anything is read."""
    inventory.key(name)
    status = keys_status(
        inventory=inventory,
        vault=vault,
        access=access,
        roles=roles,
        vault_settings=vault_settings,
        clock=clock,
        dekstore=dekstore,
        consumers=consumers,
        audit=audit,
        revocations=revocations,
    )
    return one_key(name, inventory=inventory, vault=vault, clock=clock, status=status)
