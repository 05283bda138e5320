"""The project's errors -> HTTP answers, in one table for every route.

Pure (no azure.functions): the trigger module turns an ErrorResponse into its HttpResponse, and a test walks the table.
The status says whose move it is: 4xx the caller's (fix the request), 500 the operator's (fix a setting or the
inventory), 502 upstream's (Key Vault, ARM or Event Grid refused or failed). An exception that is not a CmkError is a
bug in the app: it is logged with its traceback and answered 500 without details, so nothing internal leaks.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from shared.errors import (
    CallerNotAllowed,
    CmkError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidSetting,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Throttled,
    UnknownReference,
    Unprocessable,
    UnsupportedMediaType,
    UnwrapFailed,
)
from shared.inventory.model import InventoryError

log = logging.getLogger("cmk")

# Most specific type first: the first entry the error is an instance of answers it. InvalidSetting is an InvalidInput
# (it names a field) but the operator's to fix, so it must come before InvalidInput's 400; UnsupportedMediaType too.
STATUS_BY_ERROR: tuple[tuple[type[CmkError], int], ...] = (
    (InvalidSetting, 500),
    (UnsupportedMediaType, 415),
    (UnknownReference, 404),
    (Unprocessable, 422),
    (InvalidInput, 400),
    (CallerNotAllowed, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PreconditionFailed, 412),
    (Throttled, 429),
    (InventoryError, 500),
    (Forbidden, 502),
    (ServiceUnavailable, 502),
    (UnwrapFailed, 502),
    (CmkError, 502),
)

INTERNAL_ERROR = "InternalError"
INTERNAL_MESSAGE = "unexpected error; see the function log"


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def status_for(exc: CmkError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind))


def error_response(exc: BaseException) -> ErrorResponse:
    """The answer to a request that raised `exc`: {"error": {"code", "message", "field"?, "problems"?}}."""
    if not isinstance(exc, CmkError):
        log.error("unexpected error (%s), answered %s", type(exc).__name__, INTERNAL_ERROR, exc_info=exc)
        return ErrorResponse(500, {"error": {"code": INTERNAL_ERROR, "message": INTERNAL_MESSAGE}})
    error: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, InvalidInput):
        error["message"] = exc.reason
        error["field"] = exc.field
    else:
        error["message"] = str(exc)
    problems = getattr(exc, "problems", None)
    if problems:
        error["problems"] = list(problems)
    headers = {}
    if isinstance(exc, Throttled) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(0, math.ceil(exc.retry_after)))
    return ErrorResponse(status_for(exc), {"error": error}, headers)
