"""The inventory's policy (rules every key must meet) and the Key Vault key operations a key may list.

The defaults are the project's least-privilege baseline: HSM-backed RSA of at least 2048 bits, wrapKey and unwrapKey
only; an inventory may tighten them, and every key is checked against what it says.
"""

from __future__ import annotations

from collections.abc import Collection

from shared.inventory.model import Policy
from shared.inventory.problems import shown
from shared.inventory.section import MISSING, Section

RSA_SIZES = (2048, 3072, 4096)
KEY_TYPES = ("RSA-HSM", "RSA")
# Key Vault key operations, and the role data action each needs (see shared.roles.builtin short names).
KEY_OPS: dict[str, str | None] = {
    "wrapKey": "wrap",
    "unwrapKey": "unwrap",
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "sign": "sign",
    "verify": "verify",
    "import": None,
    "export": None,
}
_CANONICAL_OPS = {op.lower(): op for op in KEY_OPS}
_POLICY_FIELDS = ("require_hsm", "min_rsa_size", "allowed_ops", "remove_inherited_grants")


def read_ops(section: Section, name: str, *, allowed: Collection[str] | None) -> tuple[str, ...] | None:
    """A non-empty list of distinct Key Vault operations (case-insensitive, returned canonical)."""
    values = section.items(name, required=True)
    if values is None:
        return None
    if not values:
        section.problem(name, "must list at least one operation")
        return None
    ops: list[str] = []
    ok = True
    for value in values:
        op = _CANONICAL_OPS.get(value.strip().lower()) if isinstance(value, str) else None
        if op is None:
            section.problem(name, f"unknown key operation {shown(value)}; expected some of {', '.join(KEY_OPS)}")
            ok = False
        elif op in ops:
            section.problem(name, f"operation {op} is listed twice")
            ok = False
        elif allowed is not None and op not in allowed:
            section.problem(name, f"operation {op} is not allowed by policy.allowed_ops ({', '.join(allowed)})")
            ok = False
        else:
            ops.append(op)
    return tuple(ops) if ok else None


def read_policy(root: Section) -> Policy:
    section = root.section("policy", _POLICY_FIELDS, required=False)
    if section is None:
        return Policy()
    default = Policy()
    require_hsm = section.boolean("require_hsm", default.require_hsm)
    min_size = section.integer("min_rsa_size", required=False, default=default.min_rsa_size)
    if min_size is not None and min_size not in RSA_SIZES:
        section.problem("min_rsa_size", f"expected one of {', '.join(map(str, RSA_SIZES))}, got {min_size}")
        min_size = None
    ops = default.allowed_ops
    if section.raw("allowed_ops", required=False) is not MISSING:
        ops = read_ops(section, "allowed_ops", allowed=None) or default.allowed_ops
    remove_inherited = section.boolean("remove_inherited_grants", default.remove_inherited_grants)
    return Policy(
        require_hsm=require_hsm,
        min_rsa_size=min_size or default.min_rsa_size,
        allowed_ops=ops,
        remove_inherited_grants=remove_inherited,
    )
