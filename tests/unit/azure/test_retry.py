"""The retry schedule Microsoft prescribes for Key Vault throttling (1, 2, 4, 8, 16 s, or what Retry-After says), as the
unchanged azure-core pipeline and KeyClient run it over a scripted transport, with the waits recorded, not slept."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import Pipeline
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from azure.core.rest import HttpRequest
from azure.keyvault.keys import KeyClient

from shared.azure.errors import translate_error
from shared.azure.keyvault import default_retry_policy as reexported
from shared.azure.retry import RetryIncludingPost, creates_version, default_retry_policy
from shared.errors import ServiceUnavailable, Throttled

VAULT = "https://kv-retry.vault.azure.net"
THROTTLED = json.dumps({"error": {"code": "Throttled", "message": "Request was not processed because too many"}})
CHALLENGE = 'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'


class _Reply(HttpResponse):
    """A response as a custom transport returns one (azure-core's public transport extension point)."""

    def __init__(self, request, status: int, headers: dict[str, str], body: str) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.reason = "scripted"
        self.headers = {"Content-Type": "application/json", **headers}
        self.content_type = "application/json"
        self._body = body.encode()

    def body(self) -> bytes:
        return self._body


class ScriptedTransport(HttpTransport):
    """Answers each request with the next (status, headers) of its script; a 401 challenge to unauthenticated ones."""

    def __init__(self, script: list[tuple[int, dict[str, str]]], ok_body: str = "{}") -> None:
        self.script: Iterator[tuple[int, dict[str, str]]] = iter(script)
        self.ok_body = ok_body
        self.methods: list[str] = []

    def send(self, request, **kwargs):
        if "Authorization" not in request.headers:
            return _Reply(request, 401, {"WWW-Authenticate": CHALLENGE}, "")
        self.methods.append(request.method)
        status, headers = next(self.script, (200, {}))
        return _Reply(request, status, headers, self.ok_body if status < 400 else THROTTLED)

    def open(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self):
        return self

    def __exit__(self, *args) -> None: ...


class AuthorizedTransport(ScriptedTransport):
    """For a bare pipeline (no auth policy): every request counts."""

    def send(self, request, **kwargs):
        request.headers["Authorization"] = "Bearer t"
        return super().send(request, **kwargs)


class FakeCredential:
    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


def run_post(script: list[tuple[int, dict[str, str]]], method: str = "POST") -> tuple[list[float], int, _Reply]:
    waits: list[float] = []
    transport = AuthorizedTransport(script)
    pipeline = Pipeline(transport, policies=[default_retry_policy(sleep=waits.append)])
    response = pipeline.run(HttpRequest(method, f"{VAULT}/keys/k/abc/unwrapkey", json={"alg": "RSA-OAEP-256"}))
    return waits, len(transport.methods), response.http_response


def test_header_less_429_on_post_waits_1_2_4_8_16_seconds() -> None:
    waits, attempts, response = run_post([(429, {})] * 5)
    assert waits == [1, 2, 4, 8, 16]
    assert attempts == 6 and response.status_code == 200


@pytest.mark.parametrize("method", ["POST", "PATCH", "GET", "PUT"])
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_every_method_is_retried_on_throttling_and_server_errors(method: str, status: int) -> None:
    waits, attempts, response = run_post([(status, {})] * 2, method=method)
    assert (waits, attempts, response.status_code) == ([1, 2], 3, 200)


def test_retry_after_wins_over_the_back_off_when_present() -> None:
    soon = email.utils.formatdate(time.time() + 3600, usegmt=True)
    waits, _, response = run_post(
        [
            (429, {"Retry-After": "7"}),
            (429, {}),
            (429, {"retry-after-ms": "1500"}),
            (429, {"x-ms-retry-after-ms": "250"}),
            (503, {"Retry-After": soon}),
        ]
    )
    assert response.status_code == 200
    assert waits[:2] == [7, 2]  # the back-off carries on counting where Retry-After was given
    assert waits[2:4] == [1.5, 0.25]
    assert 3500 < waits[4] <= 3600  # an HTTP date: the time left until then


def test_retry_after_zero_means_at_once() -> None:
    waits, attempts, _ = run_post([(429, {"Retry-After": "0"}), (429, {})])
    assert (waits, attempts) == ([2], 3)


def test_it_gives_up_after_the_fifth_retry_with_throttled() -> None:
    waits, attempts, response = run_post([(429, {})] * 5 + [(429, {"Retry-After": "30"})])
    assert waits == [1, 2, 4, 8, 16] and attempts == 6
    error = translate_error(HttpResponseError(response=response), "key k")
    assert isinstance(error, Throttled) and error.retry_after == 30


def test_the_real_key_client_follows_the_schedule_on_a_post() -> None:
    """KeyClient.rotate_key is a POST: through the unchanged SDK (challenge auth included) it waits as prescribed."""
    waits: list[float] = []
    transport = ScriptedTransport([(429, {})] * 6, ok_body="{}")
    client = KeyClient(
        VAULT, FakeCredential(), transport=transport, retry_policy=RetryIncludingPost(sleep=waits.append)
    )
    with pytest.raises(HttpResponseError) as caught:
        client.rotate_key("k")
    assert waits == [1, 2, 4, 8, 16]
    assert transport.methods == ["POST"] * 6
    error = translate_error(caught.value, "key k")
    assert isinstance(error, Throttled) and error.retry_after is None


def test_a_persistent_outage_ends_as_service_unavailable() -> None:
    waits, _, response = run_post([(503, {})] * 6)
    assert waits == [1, 2, 4, 8, 16]
    assert isinstance(translate_error(HttpResponseError(response=response), "key k"), ServiceUnavailable)


def test_keyvault_module_still_exports_the_policy() -> None:
    assert reexported is default_retry_policy


class LostResponses(HttpTransport):
    """Every request reaches the service (counted) and its response is lost: a read timeout, as the SDK reports it."""

    def __init__(self, error: type[Exception] = ServiceResponseTimeoutError) -> None:
        self.requests: list[str] = []
        self.error = error

    def send(self, request, **kwargs):
        self.requests.append(f"{request.method} {urlsplit(request.url).path}")
        raise self.error("read timed out", error=None)

    def open(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self):
        return self

    def __exit__(self, *args) -> None: ...


def _pipeline(transport) -> tuple[Pipeline, list[float]]:
    waits: list[float] = []
    return Pipeline(transport, policies=[default_retry_policy(sleep=waits.append)]), waits


@pytest.mark.parametrize("action", ["create", "rotate", "ROTATE"])
def test_a_version_creating_post_is_never_repeated_after_a_lost_response(action: str) -> None:
    """L1: the vault may have made the version; a repeat makes another. The caller re-reads state instead."""
    transport = LostResponses()
    pipeline, waits = _pipeline(transport)
    with pytest.raises(ServiceResponseError):
        pipeline.run(HttpRequest("POST", f"{VAULT}/keys/k/{action}?api-version=7.5", json={}))
    assert len(transport.requests) == 1 and waits == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_version_creating_post_answered_by_a_server_error_is_not_repeated(status: int) -> None:
    waits, attempts = [], None
    transport = AuthorizedTransport([(status, {})] * 2)
    pipeline = Pipeline(transport, policies=[default_retry_policy(sleep=waits.append)])
    response = pipeline.run(HttpRequest("POST", f"{VAULT}/keys/k/rotate", json={}))
    attempts = len(transport.methods)
    assert (attempts, waits, response.http_response.status_code) == (1, [], status)


def test_a_version_creating_post_is_retried_when_it_surely_did_nothing() -> None:
    """429 (refused before acting) and a connection error (never sent) are safe to repeat, on Microsoft's schedule."""
    transport = AuthorizedTransport([(429, {})] * 2)
    pipeline = Pipeline(transport, policies=[default_retry_policy(sleep=[].append)])
    assert pipeline.run(HttpRequest("POST", f"{VAULT}/keys/k/create", json={})).http_response.status_code == 200
    assert len(transport.methods) == 3
    refused = LostResponses(error=ServiceRequestError)
    pipeline, waits = _pipeline(refused)
    with pytest.raises(ServiceRequestError):
        pipeline.run(HttpRequest("POST", f"{VAULT}/keys/k/create", json={}))
    assert len(refused.requests) == 6 and waits == [1, 2, 4, 8, 16]


def test_crypto_posts_are_still_retried_after_a_lost_response() -> None:
    transport = LostResponses()
    pipeline, waits = _pipeline(transport)
    with pytest.raises(ServiceResponseError):
        pipeline.run(HttpRequest("POST", f"{VAULT}/keys/k/abc/unwrapkey", json={}))
    assert len(transport.requests) == 6 and waits == [1, 2, 4, 8, 16]


def test_only_create_and_rotate_count_as_version_creating() -> None:
    assert creates_version("post", f"{VAULT}/keys/k/create?api-version=7.5")
    assert creates_version("POST", f"{VAULT}/keys/k/rotate/")
    assert not creates_version("PUT", f"{VAULT}/keys/k/rotationpolicy")
    assert not creates_version("POST", f"{VAULT}/keys/create/0a1b/unwrapkey")
    assert not creates_version("GET", f"{VAULT}/keys/k/rotate")
