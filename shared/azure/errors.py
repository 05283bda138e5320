"""SDK errors -> the project's errors, in one place for every adapter."""

from __future__ import annotations

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import (
    CmkError,
    Conflict,
    Forbidden,
    InvalidInput,
    KeyDisabled,
    KeyNotFound,
    ServiceUnavailable,
    Throttled,
)


def translate_error(exc: Exception, what: str, not_found: type[CmkError] = KeyNotFound) -> CmkError:
    """Turn an SDK error into the project's error. Messages from the service carry no key material."""
    if isinstance(exc, CmkError):
        return exc
    if isinstance(exc, ResourceNotFoundError):
        return not_found(f"{what}: not found")
    if isinstance(exc, ResourceExistsError):
        return Conflict(f"{what}: {exc.message}")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        text = f"{exc.error.code if exc.error else status}: {exc.message}" if exc.message else str(status)
        inner = ""
        if exc.error is not None and getattr(exc.error, "innererror", None):
            inner = str(exc.error.innererror.get("code", "")) if isinstance(exc.error.innererror, dict) else ""
        if status == 403:
            if inner == "KeyDisabled" or "disabled" in (exc.message or "").lower():
                return KeyDisabled(f"{what}: {text}")
            return Forbidden(f"{what}: {text}")
        if status == 404:
            return not_found(f"{what}: {text}")
        if status == 409:
            return Conflict(f"{what}: {text}")
        if status == 429:
            header = exc.response.headers.get("Retry-After") if exc.response is not None else None
            return Throttled(f"{what}: {text}", _seconds(header))
        if status == 400:
            return InvalidInput(what, text)
        if status >= 500:
            return ServiceUnavailable(f"{what}: {text}")
        return CmkError(f"{what}: {text}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ServiceUnavailable(f"{what}: {exc}")
    return CmkError(f"{what}: {type(exc).__name__}")


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; it may also be an HTTP date, which callers treat as 'unknown' and back off alone."""
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None
