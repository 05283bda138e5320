"""SDK errors -> the project's errors, in one place for every adapter.

Only what the Azure SDK raises is translated. azure-core's transports already wrap requests/urllib3/socket failures
into ServiceRequestError/ServiceResponseError (AzureError subclasses), so `AzureError` is the whole set. Anything else
raised inside an adapter (TypeError, AttributeError, KeyError...) is a bug in this code: it propagates as itself, so
it surfaces as a bug instead of being reported as a finding about somebody's vault.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
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

# What adapters catch around an SDK call: `except SDK_ERRORS as exc: raise translate_error(exc, what) from exc`.
SDK_ERRORS: tuple[type[Exception], ...] = (AzureError,)


def translate_error(exc: Exception, what: str, not_found: type[CmkError] = KeyNotFound) -> CmkError:
    """Turn an SDK error into the project's error. Messages from the service carry no key material.

    A project error is returned unchanged; any other exception is re-raised as itself, because a programming error
    turned into CmkError would be reported as drift in a vault (a finding) and hide the bug."""
    if isinstance(exc, CmkError):
        return exc
    if not isinstance(exc, SDK_ERRORS):
        raise exc
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
    return CmkError(f"{what}: {type(exc).__name__}: {exc.message}")


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; it may also be an HTTP date, which callers treat as 'unknown' and back off alone."""
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None
