"""What the Key Vault clients share: one HTTP connection pool sized to the re-wrap's concurrency, and a hook that
counts each call (and each 429) for telemetry.

Every azure-core client builds its own requests Session with urllib3's default pool of 10 connections per host. The
re-wrap runs up to REWRAP_CONCURRENCY calls at once against one vault (pages in parallel, a budget chunk of DEKs in
parallel within each), so a default pool opens connections it then cannot keep ("Connection pool is full,
discarding connection", 32 times in a 2,000-DEK re-wrap) and pays a TLS handshake for each. One pool, shared by
every client of the process and as large as the work, keeps them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from azure.core.pipeline.transport import RequestsTransport

from shared.telemetry import Telemetry, names

# Re-wrap pages the host runs at once (host.json queues: batchSize 16 + newBatchThreshold 8) times the DEKs one page
# moves at once (functions.rewrap.worker.RESERVE_CHUNK); other functions' calls fit in the rounding.
REWRAP_PAGES_AT_ONCE = 16 + 8
DEKS_AT_ONCE_PER_PAGE = 10
REWRAP_CONCURRENCY = REWRAP_PAGES_AT_ONCE * DEKS_AT_ONCE_PER_PAGE

# Key Vault's REST paths -> the operation names the metrics carry (never a key name or version: no cardinality).
_OPERATIONS = (
    (re.compile(r"/keys/[^/]+/[^/]+/unwrapkey$", re.I), "unwrapKey"),
    (re.compile(r"/keys/[^/]+/[^/]+/wrapkey$", re.I), "wrapKey"),
    (re.compile(r"/keys/[^/]+/create$", re.I), "createKey"),
    (re.compile(r"/keys/[^/]+/rotate$", re.I), "rotateKey"),
    (re.compile(r"/keys/[^/]+/rotationpolicy$", re.I), "rotationPolicy"),
    (re.compile(r"/keys/[^/]+/versions$", re.I), "listVersions"),
    (re.compile(r"/keys/[^/]+(/[^/]+)?$", re.I), "key"),
)


def pooled_transport(pool_size: int, *, connection_verify: str | bool = True) -> RequestsTransport:
    """A transport whose session keeps `pool_size` connections per host; shared, so no client closes it."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=pool_size)  # hosts kept: vaults and storage
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False, connection_verify=connection_verify)


_pools: dict[str | bool, RequestsTransport] = {}
_pools_lock = threading.Lock()


def shared_pool(connection_verify: str | bool = True) -> RequestsTransport:
    """The process's one pool of REWRAP_CONCURRENCY connections per host for clients that verify TLS this way."""
    with _pools_lock:
        if connection_verify not in _pools:
            _pools[connection_verify] = pooled_transport(REWRAP_CONCURRENCY, connection_verify=connection_verify)
        return _pools[connection_verify]


def keyvault_operation(method: str, path: str) -> str:
    for pattern, name in _OPERATIONS:
        if pattern.search(path.rstrip("/")):
            return f"{name}:{method.upper()}" if name in ("key", "rotationPolicy") else name
    return "other"


def call_counter(telemetry: Telemetry) -> Callable[[Any], None]:
    """An azure-core `raw_response_hook`: it runs after the retry policy, so every attempt (and every 429 the retry
    policy then waits out) is counted once."""

    def hook(response: Any) -> None:
        try:
            request, status = response.http_request, response.http_response.status_code
            from urllib.parse import urlsplit

            operation = keyvault_operation(request.method, urlsplit(request.url).path)
        except Exception:
            return
        telemetry.count(names.KEYVAULT_CALLS, operation=operation, status=str(status))
        if status == 429:
            telemetry.count(names.KEYVAULT_THROTTLED, operation=operation)

    return hook
