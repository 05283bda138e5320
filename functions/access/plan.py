"""Least privilege as a plan: what must change so that only a key's consumer can use it, read + wrap + unwrap only.

`plan_access` is a pure function of what ARM and the vault report: it returns ordered steps (values), and the same
plan is reported in audit mode and carried out in enforce mode. The order is the safety: a consumer's minimal grant
comes first, its broader grant goes only after the minimal one exists, so at no step is a consumer without access.

Rules, per key:
- the consumer (unless revoked on purpose) holds exactly read + wrap + unwrap at the key's own scope;
- at key scope nobody else holds key use, except break-glass principals and the app's own identity;
- the identity of another managed key's consumer holds no key use here, at any scope (the cross rule);
- grants inherited from above the key (vault, resource group, subscription) that give key use to anyone not allowed
  are reported; removed only when the inventory's policy says `remove_inherited_grants`, since they reach other
  resources too;
- key operations beyond the inventory's are removed from every enabled version;
- a grant whose role could not be read is never touched (unknown is neither "key use" nor "harmless");
- the identities the key's consumers really use (read from ARM) keep their key use: reported, never removed;
- a removal that may take away the consumer's only access (its broader or inherited grant, a group's grant) waits
  until the consumer's minimal direct grant has existed for RBAC's propagation time: Key Vault applies each change on
  its own schedule, so a grant listed in ARM may not work yet (review H2, H3). Until then it is `Deferred`.
Control-plane roles (Owner, Contributor, Reader, User Access Administrator) grant no key use and are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.arm_ids import normalize_scope
from shared.audit import principal_label
from shared.model import KeyVersion, RoleAssignment
from shared.roles.definitions import CONSUMER_NEEDS, KEY_USE, RoleDefinition


@dataclass(frozen=True)
class GrantRole:
    scope: str
    principal_id: str
    principal_type: str
    role_definition_id: str
    reason: str


@dataclass(frozen=True)
class RemoveAssignment:
    assignment_id: str
    principal_id: str
    role: str
    scope: str
    reason: str
    keeps_consumer_access_via: str | None = None  # the grant that must exist before this removal may run


@dataclass(frozen=True)
class TrimKeyOps:
    version: str
    ops: tuple[str, ...]
    removed: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Report:
    """A violation this plan does not remove (inherited grant, access-policy vault, unreadable role)."""

    principal_id: str | None
    reason: str
    assignment_id: str | None = None


@dataclass(frozen=True)
class Deferred:
    """A removal that must wait: until the consumer's minimal grant has been in effect long enough (`until`, on the
    app's clock), or, with `until` None, until that grant exists at all. A follow-up (or a later sweep) plans again."""

    step: RemoveAssignment
    until: datetime | None
    reason: str


Step = GrantRole | RemoveAssignment | TrimKeyOps | Report | Deferred
GROUP_TYPES = frozenset({"group", "foreigngroup"})


@dataclass(frozen=True)
class AccessPlan:
    key: str
    steps: tuple[Step, ...]

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not isinstance(s, Report | Deferred))

    @property
    def deferred(self) -> tuple[Deferred, ...]:
        return tuple(s for s in self.steps if isinstance(s, Deferred))

    @property
    def violations(self) -> int:
        return len(self.steps)


def _ops(definitions: dict[str, RoleDefinition | None], assignment: RoleAssignment) -> frozenset[str] | None:
    """The key operations an assignment grants; None when its role could not be read (absent from the map)."""
    if assignment.role_guid not in definitions:
        return None
    definition = definitions[assignment.role_guid]
    return definition.key_operations() if definition is not None else frozenset()


def _name(definitions: dict[str, RoleDefinition | None], assignment: RoleAssignment) -> str:
    definition = definitions.get(assignment.role_guid)
    return definition.name if definition is not None else f"role {assignment.role_guid}"


def plan_access(
    managed: Any,
    *,
    assignments: list[RoleAssignment],
    definitions: dict[str, RoleDefinition | None],
    inventory: Any,
    revoked: set[str],
    versions: list[KeyVersion],
    minimal_role_id: str,
    now: datetime | None = None,
    propagation: timedelta = timedelta(0),
    protected: dict[str, str] | None = None,
    attached: dict[str, str] | None = None,
) -> AccessPlan:
    """The steps that bring `managed` to least privilege. `definitions` maps each role GUID to its definition (None:
    no such definition, grants nothing); a GUID missing from the map is an unreadable role. `minimal_role_id` is the
    role definition id to grant the consumer (the inventory's role, read + wrap + unwrap). `protected` maps the
    identities the key's consumers really use (principal id, lower case) to the consumer's resource id. `now` and
    `propagation` decide whether the consumer's minimal grant is old enough for a removal it must outlast.
    `attached` maps identities attached to a consumer that it could be moved to: their key use is reported, never
    removed (an operator grants the new identity first and moves the consumer after), and nothing waits on them."""
    protected = {p.lower(): r for p, r in (protected or {}).items()}
    attached = {p.lower(): r for p, r in (attached or {}).items() if p.lower() not in protected}
    revoked = {r.lower() for r in revoked}
    key_scope = normalize_scope(managed.scope)
    consumer = managed.identity.principal_id.lower()
    consumer_allowed = consumer not in revoked
    allowed = {p.principal_id.lower() for p in inventory.break_glass} | {(inventory.app_identity or "").lower()}
    other_consumers = {k.identity.principal_id.lower() for k in inventory.keys if k.name != managed.name}
    remove_inherited = inventory.policy.remove_inherited_grants

    grants, removals, reports = [], [], []
    minimal_at_key = None
    broad_at_key = []
    for a in assignments:
        principal = a.principal_id.lower()
        ops = _ops(definitions, a)
        at_key = normalize_scope(a.scope) == key_scope
        if ops is None:
            if principal != consumer:
                reports.append(Report(principal, f"role {a.role_guid} could not be read: left as it is", a.id))
            continue
        own_key_grant = principal == consumer and consumer_allowed and at_key
        if not ops & KEY_USE and not (own_key_grant and ops - CONSUMER_NEEDS):
            # Control-plane or metadata-only: never touched. At its own key the consumer holds exactly read + wrap +
            # unwrap, so a grant of its there that adds anything (delete, purge, rotation policy) goes too.
            continue
        role = _name(definitions, a)
        if principal == consumer and consumer_allowed:
            if at_key and ops == CONSUMER_NEEDS:
                minimal_at_key = minimal_at_key or a
            elif at_key:
                broad_at_key.append((a, role, ops))
            else:
                why = f"the consumer's {role} at {a.scope} reaches other keys"
                if remove_inherited:
                    removals.append(RemoveAssignment(a.id, principal, role, a.scope, why, minimal_role_id))
                else:
                    reports.append(Report(principal, why, a.id))
            continue
        if principal in allowed:
            continue
        if principal in attached and principal not in revoked:
            reports.append(
                Report(
                    principal,
                    f"{principal} holds {role} at {a.scope}: it is attached to {attached[principal]}, which could be "
                    f"moved to it for {managed.name} (the inventory names {consumer}), so it is left in place",
                    a.id,
                )
            )
            continue
        if principal in protected and principal not in revoked:
            reports.append(
                Report(
                    principal,
                    f"{principal} holds {role} at {a.scope}: it is the identity {protected[principal]} really uses "
                    f"for {managed.name} (the inventory names {consumer}), so it is left in place",
                    a.id,
                )
            )
            continue
        cross = " (another key's consumer: the cross rule)" if principal in other_consumers else ""
        who = principal_label(inventory, principal, whole=True)  # "aks (3b9a4c1e-…)": whom it touched, by role
        why = f"{who} holds {role} on {managed.name} but is not its consumer{cross}"
        if principal == consumer:
            why = f"{who} was revoked from {managed.name} on purpose and holds {role} again"
        # An inherited grant of another key's consumer may be how it reaches its own key: never removed from here.
        if at_key or (remove_inherited and principal not in other_consumers):
            # A group's members are unknown without Graph: the consumer may be one, so it waits like a broad grant.
            group = a.principal_type.lower() in GROUP_TYPES and consumer_allowed
            removals.append(RemoveAssignment(a.id, principal, role, a.scope, why, minimal_role_id if group else None))
        else:
            reports.append(Report(principal, why + f"; inherited from {a.scope}", a.id))

    if consumer_allowed and minimal_at_key is None:
        grants.append(
            GrantRole(
                managed.scope,
                managed.identity.principal_id,
                managed.identity.principal_type,
                minimal_role_id,
                f"{managed.service} identity lacks read + wrap + unwrap at the key",
            )
        )
    for a, role, ops in broad_at_key:
        why = f"{managed.service} identity holds {role}, which also allows {sorted(ops - CONSUMER_NEEDS)}"
        removals.append(RemoveAssignment(a.id, consumer, role, a.scope, why, minimal_role_id))

    # An identity a consumer really uses, without a direct grant of key use at the key, may reach it through a
    # group: while that is so, no group grant goes (the app grants that identity nothing itself, so nothing to wait on).
    directly = {
        a.principal_id.lower()
        for a in assignments
        if normalize_scope(a.scope) == key_scope and (_ops(definitions, a) or frozenset()) >= CONSUMER_NEEDS
    }
    unsure = sorted(p for p in protected if p not in revoked and p not in directly)
    if unsure:
        kept = [r for r in removals if r.keeps_consumer_access_via and r.principal_id not in (consumer,)]
        removals = [r for r in removals if r not in kept]
        reports += [
            Report(r.principal_id, f"{r.reason}; kept: {', '.join(unsure)}, which a consumer really uses, has no "
                   "direct grant and may reach the key through it", r.assignment_id)
            for r in kept
        ]  # fmt: skip
    removals = [_wait_for_grant(r, minimal_at_key, now, propagation) for r in removals]
    trims = []
    wanted = tuple(managed.ops)
    for v in versions:
        extra = tuple(sorted(set(v.ops) - set(wanted)))
        if v.enabled and extra:
            trims.append(TrimKeyOps(v.version, wanted, extra, f"version {v.version} allows {list(extra)}"))
    return AccessPlan(managed.name, (*grants, *trims, *removals, *reports))


def _wait_for_grant(
    removal: RemoveAssignment, minimal: RoleAssignment | None, now: datetime | None, propagation: timedelta
) -> RemoveAssignment | Deferred:
    """A removal the consumer must outlast runs only once its minimal direct grant has existed for `propagation`."""
    if removal.keeps_consumer_access_via is None:
        return removal
    if minimal is None:
        return Deferred(removal, None, "the consumer's minimal direct grant does not exist yet")
    if propagation <= timedelta(0):
        return removal
    created = minimal.created_on
    if created is None or now is None:
        return Deferred(removal, None, "the consumer's minimal grant has no known creation time")
    until = created + propagation
    if now < until:
        return Deferred(removal, until, f"the consumer's minimal grant may not be in effect before {until.isoformat()}")
    return removal
