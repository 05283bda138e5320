"""Names of the app's work queues (Azure Storage queues), which function_app.py and the container share."""

from __future__ import annotations

REWRAP_QUEUE = "cmk-rewrap"
ACCESS_CHECK_QUEUE = "cmk-access-check"
REVOCATION_CHECK_QUEUE = "cmk-revocation-check"
