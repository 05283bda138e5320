"""Every finding the compliance report can raise: its code, its severity and what it means, in one place.

The codes are an API (alert rules, dashboards and docs/operating.md's table match on them), so they live in one enum
that the report, the docs and the tests all read; a code cannot be renamed in one place and forgotten in another. Each
code has one severity, so a rule written against a code never sees it change weight.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from shared.model import Finding, Severity


class FindingCode(StrEnum):
    severity: Severity
    summary: str

    def __new__(cls, value: str, severity: Severity, summary: str) -> FindingCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.severity = severity
        member.summary = summary
        return member

    KEY_MISSING = ("KeyMissing", Severity.CRITICAL, "the key does not exist in its vault")
    KEY_DISABLED = ("KeyDisabled", Severity.CRITICAL, "the key's current version is disabled")
    KEY_SHREDDED = (
        "KeyShredded",
        Severity.WARNING,
        "an operator's disable-key revocation (crypto-shred) is in force: every version is disabled on purpose",
    )
    SHREDDED_KEY_ENABLED = (
        "ShreddedKeyEnabled",
        Severity.CRITICAL,
        "a crypto-shredded key has an enabled version: what was shredded can be opened, or wrapped under, again",
    )
    KEY_EXPIRED = ("KeyExpired", Severity.CRITICAL, "the key's current version has expired")
    KEY_EXPIRY_FORBIDDEN = (
        "KeyExpiryForbidden",
        Severity.CRITICAL,
        "a key consumed by a MySQL flexible server has (or its rotation policy would give) an expiry date: the "
        "server goes Inaccessible when it passes",
    )
    KEY_VERSION_GENERATED = (
        "KeyVersionGenerated",
        Severity.CRITICAL,
        "an imported key has an enabled version its on-premises HSM did not supply (no import tag matching its public "
        "key): the vault generated it",
    )
    ACCESS_MISSING = ("AccessMissing", Severity.CRITICAL, "the consumer's identity cannot read, wrap and unwrap")
    ACCESS_REVOKED = (
        "AccessRevoked",
        Severity.WARNING,
        "an operator's revocation of the consumer's identity is in force: its access is missing on purpose",
    )
    VAULT_ACCESS_POLICY_MODEL = (
        "VaultAccessPolicyModel",
        Severity.CRITICAL,
        "the vault authorizes from access policies, not RBAC: anyone with Contributor on it can grant themselves "
        "key access (its policies are evaluated instead of role assignments)",
    )
    VAULT_SOFT_DELETE_DISABLED = (
        "VaultSoftDeleteDisabled",
        Severity.CRITICAL,
        "the vault has no soft delete: a deleted key is gone",
    )
    VAULT_PURGE_PROTECTION_DISABLED = (
        "VaultPurgeProtectionDisabled",
        Severity.CRITICAL,
        "the vault has no purge protection: a deleted key can be purged before its retention ends",
    )
    CONSUMER_IDENTITY_MISMATCH = (
        "ConsumerIdentityMismatch",
        Severity.CRITICAL,
        "an Azure consumer reaches the key with an identity other than the inventory's: that identity's grant is what "
        "keeps the consumer running (kept, never granted by the app); fix the inventory or the consumer",
    )
    CONSUMER_INACCESSIBLE = (
        "ConsumerInaccessible",
        Severity.CRITICAL,
        "a MySQL flexible server reports it cannot reach its key (state Inaccessible): it refuses connections",
    )
    HSM_VERSION_CAP_REACHED = (
        "HsmVersionCapReached",
        Severity.CRITICAL,
        "a Managed HSM key holds the 100 versions it may: it cannot rotate until versions are deleted",
    )
    IMPORTED_KEY_ROTATES = (
        "ImportedKeyRotates",
        Severity.HIGH,
        "an imported key's rotation policy has a Rotate action: the vault would generate its next version",
    )
    KEY_TYPE_MISMATCH = ("KeyTypeMismatch", Severity.HIGH, "kty differs from the inventory")
    KEY_SIZE_MISMATCH = ("KeySizeMismatch", Severity.HIGH, "key size differs from the inventory")
    KEY_OPS_EXCESS = ("KeyOpsExcess", Severity.HIGH, "the key allows operations beyond the inventory's")
    KEY_OPS_MISSING = ("KeyOpsMissing", Severity.HIGH, "the key lacks operations the inventory wants")
    ROTATION_OVERDUE = ("RotationOverdue", Severity.HIGH, "the current version is older than `rotate_after`")
    ACCESS_EXTRA = ("AccessExtra", Severity.HIGH, "someone who is not the key's consumer can use it")
    ACCESS_VIA_GROUP = (
        "AccessViaGroup",
        Severity.HIGH,
        "a group holds key use: its members (unknown without Microsoft Graph, possibly anyone) can use the key",
    )
    ACCESS_UNVERIFIED = (
        "AccessUnverified",
        Severity.HIGH,
        "the consumer has no direct grant, but a group grant (or a role that could not be read) may cover it",
    )
    ROLE_UNREADABLE = (
        "RoleUnreadable",
        Severity.HIGH,
        "a role definition could not be read, so what its holder can do with the key is unknown",
    )
    VAULT_RETENTION_TOO_SHORT = (
        "VaultRetentionTooShort",
        Severity.HIGH,
        "soft-delete retention is shorter than the 90 days Microsoft requires for CMK consumers",
    )
    HSM_ROLE_MANAGER = (
        "HsmRoleManager",
        Severity.HIGH,
        "someone other than the app and the break-glass principals holds Managed HSM Administrator, Crypto Officer or "
        "Policy Administrator at `/`: they can grant anyone (themselves included) any key use",
    )
    KEY_UNREADABLE = ("KeyUnreadable", Severity.HIGH, "the key could not be read")
    ACCESS_UNREADABLE = ("AccessUnreadable", Severity.HIGH, "role assignments could not be listed")
    VAULT_UNREADABLE = (
        "VaultUnreadable",
        Severity.HIGH,
        "the vault resource could not be read through ARM (permission model, soft delete, purge protection unknown)",
    )
    CONSUMER_KEY_ROTATION_ERROR = (
        "ConsumerKeyRotationError",
        Severity.HIGH,
        "a disk encryption set reports an autoKeyRotationError (or a failed provisioning state): its disks stay on "
        "an old key version",
    )
    CONSUMER_VERSION_LAG = (
        "ConsumerVersionLag",
        Severity.HIGH,
        "an Azure consumer still uses an older key version longer than its kind's lag after the current version's "
        "creation",
    )
    CONSUMER_UNREADABLE = (
        "ConsumerUnreadable",
        Severity.HIGH,
        "an Azure consumer (its key version, state or identity) could not be read through ARM",
    )
    HSM_VERSIONS_NEAR_CAP = (
        "HsmVersionsNearCap",
        Severity.WARNING,
        "a Managed HSM key holds 90 or more of the 100 versions it may: few rotations are left",
    )
    KEY_NEAR_EXPIRY = ("KeyNearExpiry", Severity.WARNING, "the current version expires within `notify_before`")
    KEY_NO_EXPIRY = ("KeyNoExpiry", Severity.WARNING, "the current version has no expiry though the inventory sets one")
    KEY_EXPIRY_TOO_LATE = ("KeyExpiryTooLate", Severity.WARNING, "the expiry is later than `expire_after` allows")
    ROTATION_POLICY_MISSING = ("RotationPolicyMissing", Severity.WARNING, "no automatic rotation in the key's policy")
    ROTATION_POLICY_MISMATCH = ("RotationPolicyMismatch", Severity.WARNING, "the rotation policy differs")
    ROTATION_POLICY_UNREADABLE = ("RotationPolicyUnreadable", Severity.WARNING, "the rotation policy could not be read")
    ACCESS_TOO_BROAD = (
        "AccessTooBroad",
        Severity.WARNING,
        "the consumer can do more than read, wrap and unwrap, or its grant sits above the key and reaches other keys",
    )
    ROLE_DEFINITION_MISSING = (
        "RoleDefinitionMissing",
        Severity.WARNING,
        "an assignment names a role definition that does not exist (it grants nothing; remove it)",
    )
    DEK_COUNT_DRIFT = (
        "DekCountDrift",
        Severity.HIGH,
        "the daily reconciliation found a shard's DEK counters off from its DEK rows (and corrected them): status, "
        "plans and retirement read those counters",
    )
    BREAK_GLASS_ACCESS = ("BreakGlassAccess", Severity.INFO, "a break-glass principal holds key use")
    BREAK_GLASS_HSM_ROLE_MANAGER = (
        "BreakGlassHsmRoleManager",
        Severity.INFO,
        "a break-glass principal holds a Managed HSM role-management role at `/`",
    )


def finding(code: FindingCode, key: str, message: str, **detail: Any) -> Finding:
    return Finding(code.value, code.severity, key, message, detail)
