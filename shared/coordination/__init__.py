"""What workers share so that they act once and within Azure's limits: claims in Table Storage (exactly once, from
state), the re-wrap budget shared by every worker on a vault, and the pacing of key creations.
"""

from shared.coordination.budget import BudgetGrant, check_request, seconds_to_window, take, window_index
from shared.coordination.claims import (
    MAX_OUTCOME_CHARS,
    Claim,
    ClaimResult,
    ClaimStatus,
    outcome_json,
    rotation_claim_id,
)
from shared.coordination.pacing import CreationPacer

__all__ = [
    "MAX_OUTCOME_CHARS",
    "BudgetGrant",
    "Claim",
    "ClaimResult",
    "ClaimStatus",
    "CreationPacer",
    "check_request",
    "outcome_json",
    "rotation_claim_id",
    "seconds_to_window",
    "take",
    "window_index",
]
