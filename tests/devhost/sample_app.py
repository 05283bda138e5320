"""A v2 function app for devhost's tests: every trigger kind devhost serves, each function writing what it received
as one JSON line to the file named by DEVHOST_SAMPLE_RECORD, so a test can see exactly what the function got."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_lock = threading.Lock()
_slept: set[str] = set()  # events on_event has already been slow for


def record(function: str, **fields: Any) -> None:
    path = os.environ.get("DEVHOST_SAMPLE_RECORD")
    if not path:
        return
    line = json.dumps({"function": function, **fields}, default=str)
    with _lock, open(path, "a", encoding="utf-8") as sink:
        sink.write(line + "\n")


@app.route(route="echo/{*rest}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {
        "class": f"{type(req).__module__}.{type(req).__name__}",
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "headers": dict(req.headers),
        "body": req.get_body().decode("utf-8"),
        "function_name": context.function_name,
        "invocation_id": context.invocation_id,
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json", headers={"X-Sample": "echo"})


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"by": "id", "id": int(req.route_params["id"])}), mimetype="application/json")


@app.route(route="items/{name:alpha}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_by_name(req: func.HttpRequest) -> str:
    return f"item named {req.route_params['name']}"


@app.route(route="greet/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def greet(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "stranger")
    return func.HttpResponse(f"hello {name}", status_code=200)


@app.route(route="admin-only", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=201)


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("sample failure on purpose")


@app.route(route="sleep/{seconds:int}", auth_level=func.AuthLevel.ANONYMOUS)
def sleep(req: func.HttpRequest) -> str:
    time.sleep(int(req.route_params["seconds"]))
    return "slept"


@app.route(route="nothing", auth_level=func.AuthLevel.ANONYMOUS)
def nothing(req: func.HttpRequest) -> None:
    return None


@app.function_name("on_event")
@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    data = event.get_json()
    if isinstance(event, func.EventGridEvent):
        fields = {
            "topic": event.topic,
            "event_type": event.event_type,
            "event_time": event.event_time.isoformat() if event.event_time else None,
            "data_version": event.data_version,
        }
    else:
        fields = {
            "source": event.source,
            "type": event.type,
            "time": event.time.isoformat() if event.time else None,
            "specversion": event.specversion,
        }
    record(
        "on_event",
        cls=f"{type(event).__module__}.{type(event).__name__}",
        id=event.id,
        subject=event.subject,
        data=data,
        **fields,
    )
    logging.info("sample on_event got %s", event.id)
    if isinstance(data, dict) and data.get("sleep_once_seconds"):  # slower than Event Grid waits, the first time
        with _lock:
            first = event.id not in _slept
            _slept.add(event.id)
        if first:
            time.sleep(float(data["sleep_once_seconds"]))
    if isinstance(data, dict) and data.get("fail"):
        raise ValueError("event asked to fail")


@app.timer_trigger(schedule="*/2 * * * * *", arg_name="timer", run_on_startup=False)
def every_two_seconds(timer: func.TimerRequest) -> None:
    record(
        "every_two_seconds",
        cls=f"{type(timer).__module__}.{type(timer).__name__}",
        past_due=timer.past_due,
        schedule_status=timer.schedule_status,
    )


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True, use_monitor=False)
async def at_startup(timer: func.TimerRequest) -> None:
    record("at_startup", past_due=timer.past_due)


@app.queue_trigger(arg_name="msg", queue_name="work-items", connection="AzureWebJobsStorage")
def work_items(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    record(
        "work_items",
        cls=f"{type(msg).__module__}.{type(msg).__name__}",
        id=msg.id,
        body=body,
        dequeue_count=msg.dequeue_count,
        insertion_time=msg.insertion_time.isoformat() if msg.insertion_time else None,
        expiration_time=msg.expiration_time.isoformat() if msg.expiration_time else None,
        pop_receipt_present=bool(msg.pop_receipt),
    )
    if body.startswith("fail"):
        raise RuntimeError("queue message asked to fail")
