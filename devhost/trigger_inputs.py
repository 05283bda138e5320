"""Builds what a function receives, and reads what an HTTP function returns, with azure.functions' own converters —
the classes the Python worker calls with the data the Functions host sends it. Going through them (rather than
constructing `func.HttpRequest` by hand) keeps devhost's objects identical to the worker's, including its quirks.

One such quirk worth knowing: with azure-functions 1.26 a CloudEvents 1.0 body reaches an Event Grid trigger as
`func.CloudEvent` (source, type, time, ...), not as `func.EventGridEvent`, whatever the parameter's annotation says.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpRequestConverter, HttpResponseConverter
from azure.functions.queue import QueueMessageInConverter
from azure.functions.timer import TimerRequestConverter


def _joined(pairs: Iterable[tuple[str, str]], *, lower: bool = False) -> dict[str, str]:
    """Repeated names are joined with commas, as the host flattens ASP.NET StringValues into one string."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if lower else name
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def http_request(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    route_params: Mapping[str, str],
    body: bytes,
) -> Any:
    """An `azure.functions.HttpRequest`, decoded from the same RpcHttp shape the worker gets.

    The worker announces the RawHttpBodyBytes capability, so the body arrives as bytes (and get_json decodes UTF-8).
    """
    datum = meta.Datum(
        type="http",
        value={
            "method": meta.Datum(method, "string"),
            "url": meta.Datum(url, "string"),
            "headers": {k: meta.Datum(v, "string") for k, v in _joined(headers, lower=True).items()},
            "query": {k: meta.Datum(v, "string") for k, v in _joined(query).items()},
            "params": {k: meta.Datum(v, "string") for k, v in route_params.items()},
            "body": meta.Datum(body, "bytes"),
        },
    )
    return HttpRequestConverter.decode(datum, trigger_metadata=None)


@dataclass(frozen=True)
class HttpReply:
    """What goes back on the wire for an HTTP function's return value."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def http_reply(returned: Any) -> HttpReply:
    """Turns a function's return value into status, headers and body, via the worker's HttpResponseConverter.

    `str` becomes a 200 text/plain response (the host does the same); None becomes 204 No Content (devhost's choice:
    the function said nothing). Anything else raises, and the invocation counts as failed, as in the worker.
    """
    if returned is None:
        return HttpReply(status=204, headers=(), body=b"")
    datum = HttpResponseConverter.encode(returned, expected_type=None)
    if datum.type == "string":
        return HttpReply(200, (("Content-Type", "text/plain; charset=utf-8"),), str(datum.value).encode("utf-8"))
    value = datum.value
    headers = [(name, header.value) for name, header in value["headers"].items()]
    for cookie in value.get("cookies") or ():
        headers.extend(("Set-Cookie", morsel.OutputString()) for morsel in cookie.values())
    body = value["body"].value or b""
    return HttpReply(status=int(value["status_code"].value), headers=tuple(headers), body=bytes(body))


def eventgrid_event(event: Mapping[str, Any]) -> Any:
    """One delivered event as the worker decodes it: EventGridEvent for the Event Grid schema, CloudEvent for a body
    carrying `specversion`. A malformed eventTime/time raises, and the invocation fails, as in the worker."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata=None)


def timer_request(
    *,
    past_due: bool,
    last: dt.datetime | None,
    next_run: dt.datetime | None,
    now: dt.datetime,
    monitored: bool,
) -> Any:
    """An `azure.functions.TimerRequest` from the host's TimerInfo JSON (ScheduleStatus only when monitored)."""
    info: dict[str, Any] = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due}
    if monitored:
        info["ScheduleStatus"] = {
            "Last": _iso(last) if last else None,
            "Next": _iso(next_run) if next_run else None,
            "LastUpdated": _iso(now),
        }
    return TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata=None)


def queue_message(
    *,
    body: bytes,
    message_id: str | None,
    dequeue_count: int | None,
    insertion_time: dt.datetime | None,
    expiration_time: dt.datetime | None,
    next_visible_time: dt.datetime | None,
    pop_receipt: str | None,
) -> Any:
    """An `azure.functions.QueueMessage` with the trigger metadata the host sends (Id, DequeueCount, times, ...).

    The body goes as a string when it is UTF-8 text (what the host sends for a queue message) and as bytes otherwise.
    """
    try:
        datum = meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        datum = meta.Datum(body, "bytes")
    metadata: dict[str, meta.Datum] = {}
    if message_id is not None:
        metadata["Id"] = meta.Datum(json.dumps(message_id), "json")
    if dequeue_count is not None:
        metadata["DequeueCount"] = meta.Datum(json.dumps(dequeue_count), "json")
    if pop_receipt is not None:
        metadata["PopReceipt"] = meta.Datum(json.dumps(pop_receipt), "json")
    for field_name, moment in (
        ("InsertionTime", insertion_time),
        ("ExpirationTime", expiration_time),
        ("NextVisibleTime", next_visible_time),
    ):
        if moment is not None:
            metadata[field_name] = meta.Datum(json.dumps(_iso(moment)), "json")
    return QueueMessageInConverter.decode(datum, trigger_metadata=metadata)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
