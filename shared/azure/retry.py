"""The retry policy every adapter's SDK client uses: Microsoft's Key Vault throttling guidance, exactly.

Microsoft prescribes, for a 429, waiting 1, 2, 4, 8 and 16 s between attempts, or what Retry-After says when the
service says it. azure-core's RetryPolicy differs in three ways that matter here: its first back-off is 0 (an
immediate retry, which a throttled vault answers with another 429), it retries a POST or PATCH answered 429 only when
Retry-After is present (Key Vault has been seen omitting it, and wrap/unwrap/rotate/create are POSTs), and it stops
after 3 status retries. This policy keeps azure-core's machinery (which responses and errors are retryable, body
rewinding, timeouts) and changes only those three, plus one of its own: a POST that makes a key version (create,
rotate) is repeated only when it surely did nothing (429, or never sent), since a repeat after the vault acted makes
a second version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.policies import RetryPolicy
from azure.core.utils import case_insensitive_dict

# Microsoft's schedule: 1, 2, 4, 8, 16 s.
RETRIES = 5
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 16
# POSTs that make a key version (Key Vault and Managed HSM: /keys/{name}/create, /keys/{name}/rotate).
_CREATES_VERSION = re.compile(r"/keys/[^/]+/(create|rotate)/?$", re.IGNORECASE)


class RetryIncludingPost(RetryPolicy):
    """Retries 429/5xx (and connection errors) on every method, POST and PATCH included, waiting
    `backoff_factor * 2**(n-1)` s before retry n (capped at `backoff_max`), unless the response says how long.

    Crypto POSTs are safe to repeat. A create/rotate POST is not: each one the vault acts on makes a version (billed,
    kept until retirement, and a second rotation nobody asked for, L1). It is repeated only when it surely did
    nothing: a 429 (refused before acting) or a connection error (never sent). After a lost response, a read timeout
    or a 5xx it fails at once, and the caller re-reads the key's versions to learn whether it was made
    (functions.rotation.rotate). `sleep` replaces the transport's sleep (tests pass a recorder, so a schedule is
    asserted without waiting for it).
    """

    def __init__(self, *, sleep: Callable[[float], None] | None = None, **kwargs: Any) -> None:
        retries = kwargs.pop("retry_total", RETRIES)
        for name in ("retry_connect", "retry_read", "retry_status"):
            kwargs.setdefault(name, retries)  # azure-core's 3 would cut the schedule short
        kwargs.setdefault("retry_backoff_factor", FIRST_BACKOFF_SECONDS)
        kwargs.setdefault("retry_backoff_max", MAX_BACKOFF_SECONDS)
        super().__init__(retry_total=retries, **kwargs)
        self._sleep = sleep

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["methods"] = frozenset(settings["methods"]) | {"POST", "PATCH"}
        return settings

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        """No further attempt for a version-creating POST that the service may have acted on; else azure-core's."""
        request = getattr(response, "http_request", None)
        if request is not None and creates_version(request.method, request.url):
            status = getattr(getattr(response, "http_response", None), "status_code", None)
            surely_not_done = isinstance(error, ServiceRequestError) if error is not None else status == 429
            if not surely_not_done:
                return False
        return super().increment(settings, response=response, error=error)

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        """The wait before retry n (n = attempts that failed so far): no free immediate retry, unlike azure-core."""
        failures = len(settings["history"])
        if failures == 0:
            return 0.0
        return float(min(settings["max_backoff"], settings["backoff"] * (2 ** (failures - 1))))

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        """Retry-After (seconds or an HTTP date), else retry-after-ms / x-ms-retry-after-ms, else the back-off.

        A present Retry-After wins even when it is 0: the service said when, and guessing longer only wastes time.
        """
        told = self._told(response) if response is not None else None
        wait = told if told is not None else self.get_backoff_time(settings)
        if wait > 0:
            (self._sleep or transport.sleep)(wait)

    def _told(self, response: Any) -> float | None:
        """What the service asked for, in seconds; azure-core's own reading treats "0" as absent, hence this."""
        headers = case_insensitive_dict(response.http_response.headers)
        for name, scale in (("retry-after", 1.0), ("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
            value = (headers.get(name) or "").strip()
            if value:
                try:
                    return self.parse_retry_after(value) / scale
                except ValueError:
                    continue  # neither seconds nor an HTTP date: as if absent
        return None


def creates_version(method: str, url: str) -> bool:
    """Whether a request makes a key version, so repeating it after the service acted would make a second one."""
    return method.upper() == "POST" and _CREATES_VERSION.search(urlsplit(url).path) is not None


def default_retry_policy(*, sleep: Callable[[float], None] | None = None) -> RetryIncludingPost:
    """The policy for every Key Vault and ARM client: 5 retries, 1, 2, 4, 8, 16 s apart unless told otherwise."""
    return RetryIncludingPost(sleep=sleep)
