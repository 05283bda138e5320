"""SDK errors -> the project's errors, with real azure-core exception objects over real transport responses.

The other half matters as much: an exception that is not the SDK's is a bug in the app, and must come out as itself,
never as a CmkError that the compliance report would turn into a finding about somebody's vault.
"""

from __future__ import annotations

import json

import pytest
import requests
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.errors import (
    CmkError,
    Conflict,
    Forbidden,
    InvalidInput,
    KeyDisabled,
    KeyNotFound,
    NotFound,
    ServiceUnavailable,
    Throttled,
)


def response(status: int, code: str = "", message: str = "", inner: str = "", headers: dict | None = None):
    """A transport response as azure-core's requests transport builds it, carrying a Key Vault/ARM error body."""
    raw = requests.Response()
    raw.status_code = status
    raw.reason = "reason"
    error: dict = {"code": code or str(status), "message": message or f"status {status}"}
    if inner:
        error["innererror"] = {"code": inner}
    raw._content = json.dumps({"error": error}).encode()
    raw.headers["Content-Type"] = "application/json"
    raw.headers.update(headers or {})
    return RequestsTransportResponse(HttpRequest("POST", "https://v.vault.azure.net/keys/k/1/unwrapkey"), raw)


def http_error(status: int, **kwargs) -> HttpResponseError:
    return HttpResponseError(response=response(status, **kwargs))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(ResourceNotFoundError(response=response(404, "KeyNotFound")), KeyNotFound, id="not-found"),
        pytest.param(ResourceExistsError(response=response(409, "Conflict")), Conflict, id="exists"),
        pytest.param(http_error(400, code="BadParameter"), InvalidInput, id="400"),
        pytest.param(http_error(403, code="Forbidden", message="Caller is not authorized"), Forbidden, id="403"),
        pytest.param(http_error(403, code="Forbidden", inner="KeyDisabled"), KeyDisabled, id="403-disabled"),
        pytest.param(http_error(404), KeyNotFound, id="404-plain"),
        pytest.param(http_error(409), Conflict, id="409"),
        pytest.param(http_error(429), Throttled, id="429"),
        pytest.param(http_error(500), ServiceUnavailable, id="500"),
        pytest.param(http_error(503), ServiceUnavailable, id="503"),
        pytest.param(ServiceRequestError("connection refused"), ServiceUnavailable, id="request-error"),
        pytest.param(ServiceResponseError("connection reset"), ServiceUnavailable, id="response-error"),
    ],
)
def test_sdk_errors_become_the_projects_errors(exc, expected):
    translated = translate_error(exc, "key k")
    assert type(translated) is expected
    assert str(translated).startswith("key k")


def test_not_found_takes_the_callers_kind():
    assert type(translate_error(ResourceNotFoundError("gone"), "queue q", NotFound)) is NotFound


def test_the_services_message_names_what_failed():
    translated = translate_error(http_error(403, code="Forbidden", message="Caller is not authorized"), "key k")
    assert "Forbidden" in str(translated) and "Caller is not authorized" in str(translated)


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0.5", 0.5), ("Wed, 21 Oct 2026 07:28:00 GMT", None)])
def test_throttled_keeps_retry_after_when_it_is_seconds(header, seconds):
    translated = translate_error(http_error(429, headers={"Retry-After": header}), "key k")
    assert isinstance(translated, Throttled)
    assert translated.retry_after == seconds


def test_an_sdk_error_without_a_status_is_still_a_project_error():
    translated = translate_error(ClientAuthenticationError("no credential available"), "key k")
    assert type(translated) is CmkError
    assert "no credential available" in str(translated)
    other = translate_error(AzureError("stream consumed"), "key k")
    assert type(other) is CmkError and "stream consumed" in str(other)


def test_a_project_error_passes_through_unchanged():
    original = KeyNotFound("key k: not found")
    assert translate_error(original, "key k") is original


@pytest.mark.parametrize(
    "bug", [TypeError("unsupported operand"), AttributeError("'NoneType' has no 'version'"), KeyError("kid")]
)
def test_a_programming_error_is_reraised_as_itself(bug):
    with pytest.raises(type(bug)) as raised:
        translate_error(bug, "key k")
    assert raised.value is bug
    assert not isinstance(raised.value, CmkError)


def test_adapters_catch_only_sdk_errors():
    """The call sites catch SDK_ERRORS, so a bug inside an adapter's try block never reaches translate_error."""
    assert all(issubclass(t, AzureError) for t in SDK_ERRORS)
    assert not any(issubclass(TypeError, t) for t in SDK_ERRORS)
