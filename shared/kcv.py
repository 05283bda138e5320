"""The key check value: proof that an unwrap returned the DEK that was wrapped, before anything overwrites it.

A truncated HMAC-SHA256 of the DEK under a fixed label: it reveals nothing usable about the DEK (a keyed hash, 16
bytes of 32 kept), and a wrong key version, a corrupt ciphertext or a service bug that returns other bytes is caught
by one comparison. A re-wrap writes the new wrapped value only after the KCV matched.
"""

from __future__ import annotations

import hashlib
import hmac

KCV_LABEL = b"cmk-guardian key check value v1"


def key_check_value(dek: bytes) -> str:
    return hmac.new(dek, KCV_LABEL, hashlib.sha256).hexdigest()[:32]


def kcv_matches(dek: bytes, expected: str) -> bool:
    return hmac.compare_digest(key_check_value(dek), expected)
