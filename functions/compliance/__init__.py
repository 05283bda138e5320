"""The compliance report: every managed key's versions, rotation policy, vault settings, grants and consumers judged
against the inventory, as findings (shared.findings).

functions.compliance.report assembles it for the sweep and `GET /api/keys`; functions.compliance.key_review judges a
key's versions and rotation policy (and says which keys may not expire); functions.compliance.vault_review judges the
vault's settings.
"""

from functions.compliance.key_review import (
    EXPIRY_TOLERANCE,
    IMPORT_TAG,
    forbids_expiry,
    imported_version,
    review_imported_versions,
    review_policy,
    review_version,
)
from functions.compliance.report import ComplianceReport, report_keys
from functions.compliance.vault_review import review_vault

__all__ = [
    "EXPIRY_TOLERANCE",
    "IMPORT_TAG",
    "ComplianceReport",
    "forbids_expiry",
    "imported_version",
    "report_keys",
    "review_imported_versions",
    "review_policy",
    "review_vault",
    "review_version",
]
