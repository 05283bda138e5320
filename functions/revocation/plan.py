"""What a revocation will do, decided before anything changes: the plan an operator reads before confirming it.

`plan_revocation` is a pure function of what ARM, the vault, the registry and the consumers report. A dry run returns
it; an execution records it with the revocation, so that the record shows what was known when the button was pressed,
and then acts on what it reads at that moment (a grant or version that appeared since the plan goes too). It also
says who loses what (consumers and the state they go to, registry DEKs that become unreadable) and why it may not
run at all (`blockers`): a revocation that would not be in force once executed (the principal keeps key use through a
grant inherited from above the key) is refused rather than carried out half-way and reported as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.arm_ids import normalize_scope
from shared.audit import principal_label
from shared.model import ConsumerKind, ConsumerState, KeyVersion, PrincipalType, RoleAssignment
from shared.revocation import RevocationAction
from shared.roles.definitions import KEY_USE, RoleDefinition

RBAC_PROPAGATION = "about 10 minutes"
GROUP_TYPES = frozenset({PrincipalType.GROUP.value.lower(), "foreigngroup"})

# What each kind of consumer goes to when it can no longer unwrap under its key (Microsoft's documentation).
LOSS_BY_KIND = {
    ConsumerKind.MYSQL_FLEXIBLE_SERVER: (
        f"Inaccessible within {RBAC_PROPAGATION}: the server denies all connections until its key works again"
    ),
    ConsumerKind.DISK_ENCRYPTION_SET: (
        "its disks cannot be attached or started: VMs and AKS nodes using them fail to start, and the set "
        "reports the key error"
    ),
}


@dataclass(frozen=True)
class PlannedAssignment:
    """An assignment the plan names, with what a restoration needs to create it again."""

    assignment_id: str
    scope: str
    role: str
    role_definition_id: str
    principal_id: str
    principal_type: str

    def to_json(self) -> dict[str, str]:
        return {
            "assignment_id": self.assignment_id,
            "scope": self.scope,
            "role": self.role,
            "role_definition_id": self.role_definition_id,
            "principal_id": self.principal_id,
            "principal_type": self.principal_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> PlannedAssignment:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Loss:
    """Who or what loses the use of the key, and what that means for it."""

    who: str  # a resource id, a principal id, or "dek-registry"
    kind: str  # consumer kind, "principal" or "dek-table"
    becomes: str

    def to_json(self) -> dict[str, str]:
        return {"who": self.who, "kind": self.kind, "becomes": self.becomes}


@dataclass(frozen=True)
class RevocationPlan:
    key: str
    action: RevocationAction
    principal_id: str | None
    service: str | None
    remove: tuple[PlannedAssignment, ...] = ()  # key-use assignments at the key's own scope
    inherited: tuple[PlannedAssignment, ...] = ()  # key use from above the key: not removable from here
    groups: tuple[PlannedAssignment, ...] = ()  # group grants of key use: membership is not visible from ARM
    disable: tuple[str, ...] = ()  # enabled versions to disable
    losses: tuple[Loss, ...] = ()
    deks_unreadable: int | None = 0  # None: the registry could not be read
    blockers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # A service's revocation: the identity the inventory names for it, when its consumers really use another one
    # (`principal_id`, the one revoked).
    inventory_principal_id: str | None = None
    # The principal as the summary names it: its role in the inventory and the start of its id (`mysql (8e2c…)`).
    principal_name: str | None = None

    @property
    def summary(self) -> str:
        if self.action is RevocationAction.DISABLE_KEY:
            what = f"disable {len(self.disable)} version(s) of {self.key} (crypto-shred)"
        else:
            who = self.principal_name or self.principal_id
            what = f"remove {len(self.remove)} key-use assignment(s) of {who} at {self.key}"
        deks = "an unknown number of" if self.deks_unreadable is None else str(self.deks_unreadable)
        tail = f"; {len(self.losses)} lose access, {deks} registry DEK(s) become unreadable"
        return what + tail + (f"; BLOCKED: {self.blockers[0]}" if self.blockers else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "key": self.key,
            "action": self.action.value,
            "principal_id": self.principal_id,
            "service": self.service,
            "inventory_principal_id": self.inventory_principal_id,
            "remove": [a.to_json() for a in self.remove],
            "inherited": [a.to_json() for a in self.inherited],
            "groups": [a.to_json() for a in self.groups],
            "disable": list(self.disable),
            "losses": [loss.to_json() for loss in self.losses],
            "deks_unreadable": self.deks_unreadable,
            "blockers": list(self.blockers),
            "notes": list(self.notes),
        }


def key_use(definitions: dict[str, RoleDefinition | None], assignment: RoleAssignment) -> bool | None:
    """Whether the assignment grants key use; None when its role could not be read."""
    if assignment.role_guid not in definitions:
        return None
    definition = definitions[assignment.role_guid]
    return bool(definition is not None and definition.key_operations() & KEY_USE)


def _planned(assignment: RoleAssignment, definitions: dict[str, RoleDefinition | None]) -> PlannedAssignment:
    definition = definitions.get(assignment.role_guid)
    role = definition.name if definition is not None else f"unreadable role {assignment.role_guid}"
    return PlannedAssignment(
        assignment.id,
        assignment.scope,
        role,
        assignment.role_definition_id,
        assignment.principal_id.lower(),
        assignment.principal_type,
    )


def _age(version: KeyVersion) -> tuple[bool, datetime]:
    return (version.created is None, version.created or datetime.min.replace(tzinfo=UTC))


def _consumer_losses(
    managed: Any, states: dict[str, ConsumerState | None], action: RevocationAction, principal: str | None = None
) -> list[Loss]:
    """The consumers that lose their key (`consumer_affected`). A consumer whose identity is unknown counts as using
    the inventory's: the plan must not understate a loss."""
    losses = []
    for consumer in managed.consumers:
        if consumer.resource_id is None:
            continue
        state = states.get(consumer.resource_id.lower())
        if not consumer_affected(action, principal, managed, state):
            continue
        becomes = LOSS_BY_KIND.get(consumer.kind, "loses the use of its key")
        if state is None:
            becomes += " (its current state could not be read)"
        elif not state.available:
            becomes += " (it is already unavailable: " + (state.error or "no reason given") + ")"
        losses.append(Loss(consumer.resource_id, consumer.kind.value, becomes))
    return losses


def consumer_affected(
    action: RevocationAction, principal: str | None, managed: Any, state: ConsumerState | None
) -> bool:
    """Whether a consumer loses its key to this revocation: always when the key is disabled; else when it reaches
    the key as `principal` (ARM's word), or, its identity unknown, when `principal` is the inventory's identity."""
    if action is RevocationAction.DISABLE_KEY:
        return True
    principal = (principal or "").lower()
    if state is not None and state.identities:
        return principal in {p.lower() for p in state.identities}
    return principal == managed.identity.principal_id.lower()


def _identities_in_use(states: dict[str, ConsumerState | None]) -> dict[str, str]:
    """Principal id (lower case) -> resource id of a consumer that really reaches the key with it (ARM's word)."""
    return {p.lower(): rid for rid, state in states.items() if state is not None for p in state.identities}


def plan_revocation(
    managed: Any,
    *,
    action: RevocationAction,
    principal_id: str | None,
    service: str | None,
    inventory: Any,
    rbac_authorization: bool,
    assignments: list[RoleAssignment],
    definitions: dict[str, RoleDefinition | None],
    versions: list[KeyVersion],
    dek_count: int | None,
    consumer_states: dict[str, ConsumerState | None],
    by_service: bool = False,
) -> RevocationPlan:
    """`assignments` are those that apply at the key (at it and above); `definitions` maps role GUIDs to their
    definitions (absent: unreadable); `dek_count` is how many registry DEKs are wrapped under any version of the key;
    `consumer_states` is keyed by lower-case resource id. `by_service`: the operator named the service, so the
    identity its consumers really use is revoked (where it differs from `principal_id`, the inventory's)."""
    key_scope = normalize_scope(managed.scope)
    app = (inventory.app_identity or "").lower()
    blockers: list[str] = []
    notes: list[str] = []
    groups = tuple(
        _planned(a, definitions)
        for a in assignments
        if a.principal_type.lower() in GROUP_TYPES and key_use(definitions, a) is not False
    )
    if groups:
        notes.append(
            f"{len(groups)} group grant(s) give key use on {managed.name}; ARM does not show group members, so a "
            "member keeps that access"
        )

    if action is RevocationAction.DISABLE_KEY:
        enabled = tuple(v.version for v in sorted(versions, key=_age) if v.enabled)
        if not enabled:
            notes.append("every version is already disabled")
        holders = sorted(
            {a.principal_id.lower() for a in assignments if key_use(definitions, a)} | {managed.identity.principal_id}
        )
        losses = _consumer_losses(managed, consumer_states, action)
        losses += [Loss(p, "principal", "can no longer wrap or unwrap under any version") for p in holders]
        if dek_count:
            losses.append(Loss("dek-registry", "dek-table", f"{dek_count} DEK(s) can no longer be opened"))
        notes.append("crypto-shredding: data wrapped under this key is unreadable until a restoration re-enables it")
        return RevocationPlan(
            managed.name,
            action,
            None,
            None,
            disable=enabled,
            losses=tuple(losses),
            deks_unreadable=dek_count,
            groups=groups,
            notes=tuple(notes),
        )

    principal = (principal_id or "").lower()
    named = None
    really_used = _identities_in_use(consumer_states)
    if by_service and really_used and principal not in really_used:
        # The service is revoked, so the identity it really reaches the key with goes, not the inventory's.
        named, principal = principal, sorted(really_used)[0]
        notes.append(
            f"the inventory names {named} for {service}, but its consumer(s) "
            f"{', '.join(sorted(set(really_used.values())))} really use {', '.join(sorted(really_used))}: "
            f"{principal} is revoked; {named} keeps what it holds (revoke it by principal_id if it must go too)"
        )
        if len(really_used) > 1:
            notes.append(f"the consumers use {len(really_used)} identities: revoke the others by principal_id")
    mine = [a for a in assignments if a.principal_id.lower() == principal]
    at_key = [a for a in mine if normalize_scope(a.scope) == key_scope]
    # At the key itself every key-use grant goes, and one whose role cannot be read too: a deliberate revocation
    # of this principal on this key does not leave a grant there that might still work.
    remove = tuple(_planned(a, definitions) for a in at_key if key_use(definitions, a) is not False)
    inherited = tuple(
        _planned(a, definitions)
        for a in mine
        if normalize_scope(a.scope) != key_scope and key_use(definitions, a) is not False
    )
    if not rbac_authorization:
        blockers.append(
            "the vault authorizes from access policies, not RBAC: remove the principal's access policy in the vault"
        )
    if principal == app:
        blockers.append("it is this app's own identity: without it nothing could verify or restore the revocation")
    if inherited:
        scopes = ", ".join(sorted({a.scope for a in inherited}))
        blockers.append(
            f"{principal} also holds key use through {len(inherited)} grant(s) inherited from {scopes}; removing "
            "them would change access to other resources, so remove them there first"
        )
    losses: list[Loss] = []
    consumer_of = principal == managed.identity.principal_id or principal in really_used
    if consumer_of:
        losses += _consumer_losses(managed, consumer_states, action, principal)
    if remove or consumer_of:
        losses.append(Loss(principal, "principal", f"can no longer wrap or unwrap under {managed.name}"))
    if not remove:
        notes.append(f"{principal} holds no key use at {managed.name}: the revocation keeps it from being granted")
    unreadable = dek_count if principal == app else 0
    return RevocationPlan(
        managed.name,
        action,
        principal,
        service,
        remove=remove,
        inherited=inherited,
        groups=groups,
        losses=tuple(losses),
        deks_unreadable=unreadable,
        blockers=tuple(blockers),
        notes=tuple(notes),
        inventory_principal_id=named,
        principal_name=principal_label(inventory, principal),
    )
