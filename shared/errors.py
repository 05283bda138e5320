"""The project's own errors. Adapters translate SDK errors into these; fakes raise the same ones.

Handlers only ever catch these, so a handler never needs to know which backend it runs on.
"""

from __future__ import annotations


class CmkError(Exception):
    """Base class. `code` is stable and goes into HTTP error bodies and logs; messages never hold key material."""

    code = "Error"


class NotFound(CmkError):
    code = "NotFound"


class KeyNotFound(NotFound):
    code = "KeyNotFound"


class Forbidden(CmkError):
    """The caller lacks permission (RBAC) or the key version refuses the operation (e.g. disabled)."""

    code = "Forbidden"


class KeyDisabled(Forbidden):
    code = "KeyDisabled"


class Conflict(CmkError):
    code = "Conflict"


class OperationInProgress(Conflict):
    """ARM refused a change because another operation on the resource is still running (409 ServerBusy,
    AnotherOperationInProgress...): the resource is busy, not broken, so callers follow it and try again later."""

    code = "OperationInProgress"


class PreconditionFailed(CmkError):
    """An ETag no longer matches: somebody else changed the entity first."""

    code = "PreconditionFailed"


class Throttled(CmkError):
    code = "Throttled"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(CmkError):
    code = "ServiceUnavailable"


class InvalidInput(CmkError):
    """Bad input from a person or a caller; `field` names what was wrong."""

    code = "InvalidField"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class UnsupportedMediaType(InvalidInput):
    """The request's body is in a format the route does not read (e.g. not `application/json`): HTTP 415."""

    code = "UnsupportedMediaType"


class UnwrapFailed(CmkError):
    """The service could not unwrap the value with that key version: wrong version, or corrupt ciphertext."""

    code = "UnwrapFailed"


class InvalidSetting(InvalidInput):
    """An app setting is wrong: the operator's to fix, not the caller's (HTTP 500, not 400)."""

    code = "InvalidSetting"


class MalformedMessage(InvalidInput):
    """A queue message no retry can fix: the trigger logs and drops it instead of retrying it into the poison queue."""

    code = "MalformedMessage"


class UnexpectedResponse(CmkError):
    """A service answered with something that is not what its API promises. Never read as "nothing there": a role
    definition we cannot parse is unknown, not one that grants nothing."""

    code = "UnexpectedResponse"


class UnknownReference(InvalidInput):
    """A field names something that does not exist (a key outside the inventory, a revocation never made): 404."""

    code = "NotFound"


class Unprocessable(InvalidInput):
    """A well-formed request the state forbids or cannot mean (an unknown service, a confirmation that does not
    match): 422."""

    code = "Unprocessable"


class CallerNotAllowed(CmkError):
    """The caller is authenticated but may not press this button (not in the operators' list): 403."""

    code = "CallerNotAllowed"
