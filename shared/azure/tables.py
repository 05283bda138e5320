"""A Table Storage table that creates itself on first use, and the key escaping every table adapter shares.

The app never provisions its tables in a deployment step: the first write of a process creates the table (a
conflict means another instance was first), so a new table name in settings needs nothing but the setting.
PartitionKey and RowKey may not hold `/ \\ # ?` or control characters, so ids that may contain them (claim ids hold
vault hosts and key names) are percent-escaped: readable in Storage Explorer, reversible, and with `%` itself escaped
no two ids share a key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.table_limits import SizeCheckedTable
from shared.errors import InvalidInput, NotFound
from shared.timestamps import iso_utc

MAX_KEY_CHARS = 1024  # PartitionKey and RowKey are each at most 1 KiB
_RESERVED = frozenset("/\\#?%")


def escape_key(value: str) -> str:
    """`value` made safe for a PartitionKey or RowKey: each forbidden character (and `%`) as `%XX` of its UTF-8."""
    return "".join(_escape_char(c) for c in value)


def unescape_key(value: str) -> str:
    """The inverse of escape_key."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "%":
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out += value[i].encode()
            i += 1
    return out.decode()


def _escape_char(c: str) -> str:
    code = ord(c)
    if c in _RESERVED or code < 0x20 or 0x7F <= code <= 0x9F:
        return "".join(f"%{b:02X}" for b in c.encode())
    return c


def table_client(
    table_name: str,
    *,
    connection_string: str | None = None,
    service_uri: str | None = None,
    credential: Any = None,
    connection_verify: str | bool = True,
    transport: Any = None,
) -> TableClient:
    """A client from a connection string (Azurite, account keys) or from the table service URI and an identity (the
    Functions host's identity-based `AzureWebJobsStorage__*` form), whichever the app was configured with;
    `connection_verify` is the CA bundle to trust (CMK_CA_BUNDLE, for the local run's HTTPS Azurite). Every client
    shares the process's connection pool (shared.azure.transport.shared_pool, as large as a re-wrap's concurrency)
    unless given a `transport`: a re-wrap page reads and replaces its DEKs as concurrently as it unwraps them."""
    from shared.azure.transport import shared_pool

    if connection_string:
        options = {"transport": transport or shared_pool(True)}
        return TableClient.from_connection_string(connection_string, table_name=table_name, **options)
    options = {"transport": transport or shared_pool(connection_verify)}
    if service_uri and credential is not None:
        return TableClient(
            endpoint=service_uri,
            table_name=table_name,
            credential=credential,
            connection_verify=connection_verify,
            **options,
        )
    raise ValueError("a connection string, or a service URI and a credential, is required")


class LazyTable:
    """A TableClient whose table is created the first time this process needs it; `call` translates SDK errors."""

    def __init__(self, client: TableClient) -> None:
        self.client = client
        self.name = client.table_name
        self._created = False
        self._lock = threading.Lock()
        self._checked = SizeCheckedTable(client)  # Azure's entity size limit, which Azurite measures otherwise

    def ensure(self) -> SizeCheckedTable:
        if not self._created:
            with self._lock:
                if not self._created:
                    try:
                        with contextlib.suppress(ResourceExistsError):
                            self.client.create_table()
                    except SDK_ERRORS as exc:
                        raise translate_error(exc, f"table {self.name}", NotFound) from exc
                    self._created = True
        return self._checked

    def close(self) -> None:
        self.client.close()


def checked_key(field: str, value: str) -> str:
    """The escaped key for `value`, or InvalidInput naming `field` when it is empty or too long for a key."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    key = escape_key(value)
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInput(field, f"too long for a table key ({len(key)} characters escaped, at most {MAX_KEY_CHARS})")
    return key


def utc_instant(value: datetime) -> datetime:
    """A plain aware UTC datetime: naive taken as UTC, as everywhere in the app (the SDK's own conversion would
    take it as local time), and the SDK's datetime subclass dropped on the way back."""
    return datetime.fromisoformat(iso_utc(value))


ROW_TOKEN_VERSION = 1


def encode_row_token(start_row: str) -> str:
    """An opaque continuation token: the RowKey the next page starts at, versioned, base64url JSON."""
    raw = json.dumps({"v": ROW_TOKEN_VERSION, "start": start_row}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_row_token(token: str, *, store: str, valid: Callable[[str], object] = bool) -> str:
    """The RowKey a token resumes at; InvalidInput naming `continuation` for anything `store` did not issue."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, AttributeError, TypeError):
        data = None
    start = data.get("start") if isinstance(data, dict) and data.get("v") == ROW_TOKEN_VERSION else None
    if not isinstance(start, str) or not start or not valid(start):
        raise InvalidInput("continuation", f"not a token this {store} issued")
    return start
