"""Least privilege over random starting points: whatever grants a deployment drifted into, reconciling both keys leaves
each consumer with exactly read + wrap + unwrap on its own key, nobody else with key use there, never a consumer cut
off on the way, nothing left to do on a second pass, and the control-plane roles at subscription scope untouched.

Each example builds its own fakes (hypothesis reruns the body; a pytest fixture would be shared between examples)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.access.reconcile import RBAC_PROPAGATION, reconcile_key
from shared import roles
from shared.arm_ids import normalize_scope
from shared.inventory import load_inventory
from shared.inventory.model import Mode
from shared.roles.catalog import RoleCatalog
from shared.roles.definitions import CONSUMER_NEEDS, KEY_DATA_ACTIONS, KEY_USE
from tests.fakes.access import FakeAccessControl
from tests.fakes.audit import FakeAuditTrail
from tests.fakes.clock import FakeClock
from tests.fakes.keyvault import FakeKeyVault
from tests.fakes.outbound import FakeAlerts, FakeConsumers
from tests.fakes.revocations import FakeRevocations
from tests.fakes.vaults import FakeVaults

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = load_inventory(ROOT / "inventory/reference.yaml", {})
AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"

BUILT_IN = [
    roles.OWNER,
    roles.CONTRIBUTOR,
    roles.ARM_READER,
    roles.USER_ACCESS_ADMINISTRATOR,
    roles.CRYPTO_USER,
    roles.CRYPTO_SERVICE_ENCRYPTION_USER,
    roles.CRYPTO_OFFICER,
    roles.READER,
]
CONTROL_PLANE = {r.guid for r in (roles.OWNER, roles.CONTRIBUTOR, roles.ARM_READER, roles.USER_ACCESS_ADMINISTRATOR)}
SCOPES = ("own key", "other key", "vault", "resource group", "subscription")
STRANGERS = [
    ("User", "0f1e2d3c-4b5a-4968-8776-655443322110"),
    ("ServicePrincipal", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
    ("User", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"),
    ("Group", "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f"),
    ("ForeignGroup", "4d5e6f7a-8b9c-4d0e-9f1a-3b4c5d6e7f80"),
]
PRINCIPALS = ("aks", "mysql", "break-glass", "app", *(f"stranger{i}" for i in range(len(STRANGERS))))

# Custom roles: the interesting sets (exactly what a consumer needs, a bit less, a bit more) and random subsets.
op_sets = st.one_of(
    st.sampled_from(
        [CONSUMER_NEEDS, frozenset({"wrap", "unwrap"}), CONSUMER_NEEDS | {"decrypt"}, frozenset({"read", "delete"})]
    ),
    st.frozensets(st.sampled_from(sorted(KEY_DATA_ACTIONS)), max_size=6),
)
# Weighted towards the cases that matter: the consumers themselves, at key scope, holding key use.
assignment = st.tuples(
    st.one_of(st.sampled_from(SCOPES[:2]), st.sampled_from(SCOPES)),
    st.sampled_from(("aks", "mysql")),  # whose key "own key" means
    st.one_of(  # a built-in role or custom role number n
        st.sampled_from([roles.CRYPTO_USER, roles.CRYPTO_OFFICER]), st.sampled_from(BUILT_IN), st.integers(0, 2)
    ),
    st.one_of(st.sampled_from(PRINCIPALS[:2]), st.sampled_from(PRINCIPALS)),
    st.booleans(),  # spell the scope and principal in upper case (ARM ids are case-insensitive)
)
case = st.fixed_dictionaries(
    {
        "reference_grants": st.frozensets(st.sampled_from((AKS, MYSQL))),
        "custom": st.lists(op_sets, min_size=3, max_size=3),
        "assignments": st.lists(assignment, max_size=12),
        "control_plane": st.lists(  # at subscription scope: what (e) keeps
            st.tuples(st.sampled_from(BUILT_IN[:4]), st.sampled_from(PRINCIPALS)), max_size=4
        ),
        "revoked": st.frozensets(st.sampled_from((AKS, MYSQL))),
        "enforce": st.booleans(),
        "remove_inherited": st.booleans(),
        "broad_versions": st.frozensets(st.sampled_from((AKS, MYSQL))),
        "order": st.permutations((AKS, MYSQL)),
    }
)


class WatchedAccess(FakeAccessControl):
    """The fake ARM, checked after every change reconciliation makes: does each consumer still reach its key?

    Key Vault as Azure has it, in the worst case: a deletion applies at once, a new grant only once it has existed
    for RBAC's propagation time (the set-up's grants are long in effect). So a consumer "reaches its key" only
    through grants that are in effect, and a removal that does not wait for the minimal grant shows as a lapse."""

    def __init__(self, clock) -> None:
        super().__init__(clock)
        self.initial: set[str] = set()
        self.started = False  # the test's own set-up is not watched
        self.watching: dict[str, Any] = {}  # key name -> managed key, for the consumers that must never lose access
        self.had: set[str] = set()
        self.lapses: list[str] = []
        self.created: list = []
        self.deleted: list = []

    def effective_ops(self, managed, principal: str, *, in_effect_only: bool = False) -> frozenset[str]:
        ops: set[str] = set()
        for a in self.list_assignments(managed.scope):
            if in_effect_only and not self._in_effect(a):
                continue
            if a.principal_id.lower() == principal.lower():
                ops |= self.get_role_definition(a.role_definition_id).key_operations()
        return frozenset(ops)

    def _in_effect(self, a) -> bool:
        if a.id.lower() in self.initial:
            return True
        return a.created_on is not None and self.clock.now() - a.created_on >= RBAC_PROPAGATION

    def start(self, managed_keys) -> None:
        self.watching = {k.name: k for k in managed_keys}
        self.initial = {a.id.lower() for a in self.all()}
        self.started = True
        self._observe("start")

    def _observe(self, what: str) -> None:
        for name, managed in self.watching.items():
            if self.effective_ops(managed, managed.identity.principal_id, in_effect_only=True) >= CONSUMER_NEEDS:
                self.had.add(name)
            elif name in self.had:
                self.lapses.append(f"{name}'s consumer lacks read+wrap+unwrap after {what}")

    def create_assignment(self, scope, role_definition_id, principal_id, principal_type, name=None):
        made = super().create_assignment(scope, role_definition_id, principal_id, principal_type, name)
        if self.started:
            self.created.append(made)
            self._observe(f"create {made.id}")
        return made

    def delete_assignment(self, assignment_id: str) -> bool:
        if self.started:
            self.deleted.extend(a for a in self.all() if a.id.lower() == assignment_id.lower())
        gone = super().delete_assignment(assignment_id)
        if self.started:
            self._observe(f"delete {assignment_id}")
        return gone


def _world(c: dict):
    inventory = dataclasses.replace(
        REFERENCE,
        mode=Mode.ENFORCE if c["enforce"] else Mode.AUDIT,
        policy=dataclasses.replace(REFERENCE.policy, remove_inherited_grants=c["remove_inherited"]),
    )
    keys = {k.name: k for k in inventory.keys}
    clock, vaults, revocations = FakeClock(), FakeVaults(), FakeRevocations()
    access = WatchedAccess(clock)
    vault = FakeKeyVault(clock)
    for v in inventory.vaults:
        vaults.register(v.resource_id)
    sub_id = inventory.vaults[0].subscription_id
    for key in inventory.keys:
        ops = (*key.ops, "encrypt", "decrypt") if key.name in c["broad_versions"] else key.ops
        vault.create_key(key.ref, kty=key.kty, size=key.size, ops=ops, expires=key.rotation.expiry_for(clock.now()))
        if key.name in c["reference_grants"]:
            access.create_assignment(
                key.scope, roles.role_definition_id(sub_id, key.role), key.identity.principal_id, "ServicePrincipal"
            )
    custom = [
        access.define_role(f"custom {i}", data_actions=[KEY_DATA_ACTIONS[op] for op in sorted(ops)])
        for i, ops in enumerate(c["custom"])
    ]
    vault_ = inventory.vaults[0]
    principals = {
        "aks": ("ServicePrincipal", keys[AKS].identity.principal_id),
        "mysql": ("ServicePrincipal", keys[MYSQL].identity.principal_id),
        "break-glass": ("Group", inventory.break_glass[0].principal_id),
        "app": ("ServicePrincipal", inventory.app_identity),
        **{f"stranger{i}": s for i, s in enumerate(STRANGERS)},
    }
    for scope_kind, whose, role, principal, upper in c["assignments"]:
        own, other = keys[AKS if whose == "aks" else MYSQL], keys[MYSQL if whose == "aks" else AKS]
        scope = {
            "own key": own.scope,
            "other key": other.scope,
            "vault": vault_.resource_id,
            "resource group": f"/subscriptions/{sub_id}/resourceGroups/{vault_.resource_group}",
            "subscription": f"/subscriptions/{sub_id}",
        }[scope_kind]
        role_id = (
            roles.role_definition_id(sub_id, role)
            if isinstance(role, roles.BuiltInRole)
            else f"/subscriptions/{sub_id}/providers/Microsoft.Authorization/roleDefinitions/{custom[role]}"
        )
        kind, principal_id = principals[principal]
        if upper:
            scope, principal_id = scope.upper(), principal_id.upper()
        access.create_assignment(scope, role_id, principal_id, kind)
    for role, principal in c["control_plane"]:
        kind, principal_id = principals[principal]
        access.create_assignment(f"/subscriptions/{sub_id}", roles.role_definition_id(sub_id, role), principal_id, kind)
    for name in c["revoked"]:
        revocations.revoke(name, keys[name].identity.principal_id, at=clock.now())
    ports = {
        "inventory": inventory,
        "access": access,
        "vault": vault,
        "vault_settings": vaults,
        "revocations": revocations,
        "audit": FakeAuditTrail(),
        "alerts": FakeAlerts(),
        "clock": clock,
        "consumers": FakeConsumers(),  # no Azure consumer registered: each is NotFound, so no identity is read
    }
    return inventory, keys, access, vault, ports


def _reconcile(keys, order, ports, access) -> dict:
    # A fresh role catalog per pass, as each handler invocation builds one.
    return {
        name: reconcile_key(keys[name], trigger="property", roles=RoleCatalog(access, ports["clock"]), **ports)
        for name in order
    }


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case)
def test_reconcile_reaches_least_privilege_without_ever_locking_a_consumer_out(c):
    inventory, keys, access, vault, ports = _world(c)
    before = {a.id for a in access.all()}
    revoked = {keys[name].identity.principal_id.lower() for name in c["revoked"]}
    consumers = {k.identity.principal_id.lower() for k in keys.values()}
    allowed = {p.principal_id.lower() for p in inventory.break_glass} | {inventory.app_identity.lower()}
    protected = {
        a.id
        for a in access.all()
        if a.role_guid in CONTROL_PLANE
        and normalize_scope(a.scope) == normalize_scope(f"/subscriptions/{keys[AKS].vault.subscription_id}")
    }
    access.start(k for k in keys.values() if k.identity.principal_id.lower() not in revoked)

    first = _reconcile(keys, c["order"], ports, access)
    assert all(o.plan is not None and not o.skipped for o in first.values()), first
    # what had to wait for a new minimal grant to be in effect is done by the follow-up (or the next sweep)
    ports["clock"].advance(RBAC_PROPAGATION + timedelta(seconds=1))
    follow_up = _reconcile(keys, c["order"], ports, access)
    assert all(o.plan is not None and not o.skipped and not o.deferred for o in follow_up.values()), follow_up

    # (e) control-plane roles at subscription scope are never touched
    assert not protected & {a.id for a in access.deleted}
    assert protected <= {a.id for a in access.all()}
    # a revoked consumer is never granted anything
    assert not [a for a in access.created if a.principal_id.lower() in revoked]
    if not c["enforce"]:
        assert {a.id for a in access.all()} == before and not access.created  # audit mode reports, changes nothing
        return
    # every change made is an audit record, and each deletion one of the plan's
    made = {"access-grant", "access-remove", "trim-key-ops"}
    executed = [step for o in (*first.values(), *follow_up.values()) for step in o.executed]
    assert len([r for r in ports["audit"].all() if r.action in made]) == len(executed)
    assert len(access.deleted) == len([s for s in executed if s.startswith("RemoveAssignment")])
    # (c) at no step of any plan was a consumer without read + wrap + unwrap on its own key, once it had it
    assert access.lapses == []
    for name, managed in keys.items():
        key_scope = normalize_scope(managed.scope)
        consumer = managed.identity.principal_id.lower()
        at_key = [a for a in access.list_assignments(managed.scope) if normalize_scope(a.scope) == key_scope]
        if consumer not in revoked:
            # (a) exactly what it needs at its own key: read + wrap + unwrap, nothing more
            ops = frozenset().union(
                *(
                    access.get_role_definition(a.role_definition_id).key_operations()
                    for a in at_key
                    if a.principal_id.lower() == consumer
                )
            )
            assert ops == CONSUMER_NEEDS, (name, ops)
        # (b) nobody else keeps key use at key scope, apart from break-glass and the app
        for a in at_key:
            principal = a.principal_id.lower()
            if principal in allowed or (principal == consumer and consumer not in revoked):
                continue
            assert not access.get_role_definition(a.role_definition_id).key_operations() & KEY_USE, (name, a)
        if c["remove_inherited"]:
            # and, when the inventory lets inherited grants go, nobody else reaches the key from above either
            for principal in consumers | {s[1].lower() for s in STRANGERS}:
                if principal == consumer and consumer not in revoked:
                    assert access.effective_ops(managed, principal) & KEY_USE == {"wrap", "unwrap"}
                else:
                    assert not access.effective_ops(managed, principal) & KEY_USE, (name, principal)
        # key operations beyond the inventory's are gone from every enabled version
        assert all(set(v.ops) == set(managed.ops) for v in vault.list_versions(managed.ref) if v.enabled)

    # (d) a second pass finds nothing to change
    second = _reconcile(keys, c["order"], ports, access)
    assert {name: o.plan.changes for name, o in second.items()} == {AKS: (), MYSQL: ()}
