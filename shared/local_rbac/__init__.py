"""Managed HSM local RBAC as the app sees it: one AccessControl port over ARM's role assignments and every Managed
HSM's own, chosen by scope.

A Managed HSM grants key use through assignments it holds itself, at `/`, `/keys` or `/keys/<name>`, which ARM neither
lists nor reports. The app keeps judging access with ARM-shaped scopes (a key's scope is `<resource id>/keys/<name>`
for a vault and an HSM alike): shared.local_rbac.scopes translates between the two, and
shared.local_rbac.routing sends each call to ARM or to the HSM that holds the scope, so the access judgement, the
reconcile and revocation run unchanged on either.
"""

from shared.local_rbac.routing import RoutedAccessControl
from shared.local_rbac.scopes import (
    ASSIGNMENTS_SEGMENT,
    HsmScopes,
    assignment_scope,
)

__all__ = ["ASSIGNMENTS_SEGMENT", "HsmScopes", "RoutedAccessControl", "assignment_scope"]
