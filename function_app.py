"""The Azure Functions entry point (Python v2 model): triggers only.

This is the only module that imports azure.functions. Each trigger turns its input into a typed value, calls one
handler with ports from shared.bootstrap (built lazily, once per process), and turns the outcome into a response or a
log line. Module-level imports stay light (no Azure SDK client) because cold start is paid on every scale-out.

Handlers come from one package per capability (functions.access, .rewrap, .rotation, .revocation, .api, ...), each
through what its __init__ exports. The triggers stay here rather than in a func.Blueprint per capability: a Blueprint
would bring azure.functions into functions/, whose handlers are plain functions over ports, and one file lists every
trigger the host indexes (indexing and the import weight are as before).
"""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from functions import access, alerting, api, revocation, rewrap, rotation, sweep
from functions.api import Answer, error_answer, ok, revocation_answer, rotation_answer
from functions.consumers import alert_poisoned_move, move_consumer
from functions.dispatch import dispatch
from functions.event_handlers import EVENT_HANDLERS
from shared import bootstrap
from shared.alerts import ALERT_QUEUE
from shared.errors import CallerNotAllowed, CmkError, MalformedMessage
from shared.events import parse_event
from shared.http import (
    FUNCTION_KEY_CALLER,
    identify,
    parse_alerts_request,
    parse_audit_request,
    parse_key_name,
    parse_query,
    parse_restore_request,
    parse_revocation_id,
    parse_revoke_request,
    parse_rotate_request,
    process_policy,
    status_viewer,
)
from shared.queues import ACCESS_CHECK_QUEUE, MOVE_QUEUE, RECONCILE_QUEUE, REVOCATION_CHECK_QUEUE, REWRAP_QUEUE
from shared.timestamps import iso_utc

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("cmk")


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, indent=2), status_code=status, mimetype="application/json", headers=headers or None
    )


def _respond(answer: Answer) -> func.HttpResponse:
    return _json(answer.status, answer.body, answer.headers)


def _error(exc: Exception) -> func.HttpResponse:
    """One error shape for every route, from one table (shared.http.errors); a bug is logged there, answered 500."""
    return _respond(error_answer(exc))


# Every HTTP trigger reads its query string through shared.http.parse_query first (or a parser built on it), so an
# unknown or repeated parameter is a 400 naming it before anything is read or changed (tests/unit/api check each).


@app.route(route="keys", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_keys(req: func.HttpRequest) -> func.HttpResponse:
    """Every managed key: current version, attributes, rotation policy, compliance findings and its dependents."""
    try:
        parse_query(req.url, hint="one key is GET /api/keys/{name}")
        status = bootstrap.deps().call(api.keys_status)
    except Exception as exc:
        return _error(exc)
    return _json(200, status)


KEY_NAME_PARAMETER = "name"


@app.route(route="keys/{name}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def key_status(req: func.HttpRequest) -> func.HttpResponse:
    """One managed key: as in `GET /api/keys`, plus its versions on a timeline; 404 naming a key it does not manage."""
    try:
        parse_query(req.url)
        name = parse_key_name(req.route_params.get(KEY_NAME_PARAMETER))
        return _json(200, bootstrap.deps().call(api.key_detail, name))
    except Exception as exc:
        return _error(exc)


@app.route(route="alerts", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    """The alerts queued lately, newest first, with their delivery state: `?state=pending|sent|failed&limit=`."""
    try:
        query = parse_alerts_request(req.url)
        return _json(200, bootstrap.deps().call(api.alerts_list, query))
    except Exception as exc:
        return _error(exc)


# Behind App Service authentication the page is for signed-in operators without a function key (the host gives a
# signed-in user no auth level of its own: azure-functions-host#11394), checked by shared.http.status_viewer; anywhere
# else the host checks the function key. Read when the host indexes the app, as the platform sets it before start.
STATUS_AUTH_LEVEL = (
    func.AuthLevel.ANONYMOUS
    if os.environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"
    else func.AuthLevel.FUNCTION
)


@app.route(route="status", methods=["GET"], auth_level=STATUS_AUTH_LEVEL)
def status(req: func.HttpRequest) -> func.HttpResponse:
    """The status page: one self-contained HTML page of every key, the latest audit records and alerts; read-only."""
    try:
        parse_query(req.url)
        viewer = status_viewer(
            dict(req.headers), process_policy(), key_checked=STATUS_AUTH_LEVEL == func.AuthLevel.FUNCTION
        )
        if not viewer.allowed:
            raise CallerNotAllowed(viewer.why)
        shown = "the function key" if viewer.name == FUNCTION_KEY_CALLER else viewer.name
        page = bootstrap.deps().call(api.status_page, shown)
    except Exception as exc:
        return _error(exc)
    return func.HttpResponse(
        page, status_code=200, mimetype="text/html", charset="utf-8", headers=api.STATUS_PAGE_HEADERS
    )


@app.route(route="rotations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def rotations(req: func.HttpRequest) -> func.HttpResponse:
    """An operator's rotation: `{"key", "reason"}` -> 201 rotated, 200 already rotated, 409 in progress."""
    try:
        parse_query(req.url)
        # The caller as shared.http.callers trusts it: in Azure a principal header counts only behind App Service auth.
        caller = identify(dict(req.headers), process_policy()).name
        command = parse_rotate_request(req.get_body(), dict(req.headers), caller)
        return _respond(rotation_answer(bootstrap.deps().call(rotation.rotate_now, command)))
    except Exception as exc:
        return _error(exc)


@app.route(route="audit", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit_trail(req: func.HttpRequest) -> func.HttpResponse:
    """The audit trail, newest first: `?key=&since=&continuation=&limit=` -> `{"records", "continuation"}`."""
    try:
        query = parse_audit_request(req.url)
        return _respond(ok(bootstrap.deps().call(api.read_audit, query).to_json()))
    except Exception as exc:
        return _error(exc)


def _operator_call(req: func.HttpRequest, route: str, parse, handler) -> func.HttpResponse:
    """The dangerous routes: the caller is identified first (and refused before the body is even read), and every
    call, refused or not, is on the audit record with its caller."""
    deps = bootstrap.deps()
    caller = None
    try:
        parse_query(req.url)
        caller = identify(dict(req.headers), process_policy())
        if not caller.allowed:
            raise CallerNotAllowed(caller.why)
        command = parse(req.get_body(), dict(req.headers), caller.name)
        return _respond(revocation_answer(deps.call(handler, command)))
    except Exception as exc:
        try:
            deps.call(revocation.record_refusal, route, caller.name if caller else "unknown", exc)
        except Exception as audit_error:  # the refusal stands; the missing record is logged
            log.error("%s: refusal not audited (%s)", route, type(audit_error).__name__)
        return _error(exc)


@app.route(route="revocations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def revocations(req: func.HttpRequest) -> func.HttpResponse:
    """Revoke a principal's key use or crypto-shred a key: a plan unless `"dry_run": false` (then 202 + Location)."""
    return _operator_call(req, "revocation-request", parse_revoke_request, revocation.revoke)


REVOCATION_ID_PARAMETER = "id"


@app.route(route="revocations/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def revocation_status(req: func.HttpRequest) -> func.HttpResponse:
    """One revocation: its state (planned, executed, verified, failed with why, restoring, restored) and plan."""
    try:
        parse_query(req.url)
        revocation_id = parse_revocation_id(req.route_params.get(REVOCATION_ID_PARAMETER))
        return _json(200, bootstrap.deps().call(revocation.get_revocation, revocation_id))
    except Exception as exc:
        return _error(exc)


@app.route(route="restorations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def restorations(req: func.HttpRequest) -> func.HttpResponse:
    """Break-glass: give back what a revocation took, `{"revocation_id", "reason"}` -> 202 + Location."""
    return _operator_call(req, "restoration-request", parse_restore_request, revocation.restore)


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 document of the routes above (functions.api.openapi; a test keeps it in step with them)."""
    from functions.api.openapi import openapi_document as document  # literals only, but only this route needs them

    try:
        parse_query(req.url)
    except Exception as exc:
        return _error(exc)
    return _json(200, document())


def _event_dict(event: func.EventGridEvent | func.CloudEvent) -> dict:
    """Rebuild the envelope the host decoded, so shared.events parses one shape of input whatever the schema."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "subject": event.subject,
            "type": event.type,
            "time": iso_utc(event.time),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": iso_utc(event.event_time),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def _handle_event(event: func.EventGridEvent | func.CloudEvent, trigger: str) -> None:
    try:
        deps = bootstrap.deps()
        inventory = deps.inventory
    except CmkError as exc:
        # Without a valid inventory nothing can be decided; raise so Event Grid redelivers once it is fixed.
        log.error("%s: inventory unusable, event %s not processed: %s", trigger, event.id, exc)
        raise
    outcome = dispatch(parse_event(_event_dict(event), inventory), EVENT_HANDLERS, call=deps.call)
    level = logging.WARNING if outcome.status == "rejected" else logging.INFO
    results = outcome.result if isinstance(outcome.result, list) else [outcome.result]
    shown = [r.to_json() for r in results if hasattr(r, "to_json")]
    result = f" -> {json.dumps(shown[0] if len(shown) == 1 else shown)}" if shown else ""
    log.log(level, "%s: %s %s%s", trigger, outcome.status, outcome.summary, result)


@app.event_grid_trigger(arg_name="event")
def keyvault_events(event: func.EventGridEvent) -> None:
    """Key Vault system-topic events: KeyNewVersionCreated, KeyNearExpiry, KeyExpired, VaultAccessPolicyChanged."""
    _handle_event(event, "keyvault_events")


@app.event_grid_trigger(arg_name="event")
def role_assignment_events(event: func.EventGridEvent) -> None:
    """ARM resource-group/subscription events for Microsoft.Authorization/roleAssignments writes and deletes."""
    _handle_event(event, "role_assignment_events")


# NCRONTAB, six fields (seconds first), UTC. Read at indexing time, so an app-setting change takes effect on restart.
SWEEP_SCHEDULE = os.environ.get("CMK_SWEEP_SCHEDULE", "").strip() or "0 0 * * * *"


@app.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False, use_monitor=True)
def compliance_sweep(timer: func.TimerRequest) -> None:
    """Periodic compliance report, alerting on high and critical drift (rotation and clean-up join this sweep)."""
    if timer.past_due:
        log.warning("compliance_sweep: running late (past due)")
    outcome = bootstrap.deps().call(sweep.run_sweep)
    for action in outcome.actions():  # what it did, one line per decision (a quiet sweep logs none)
        log.info("compliance_sweep: %s", action)
    log.info("compliance_sweep: %s", json.dumps(outcome.report.to_json()["summary"], sort_keys=True))
    for f in outcome.report.findings:
        log.warning("compliance_sweep: %s %s %s: %s", f.severity.value, f.key, f.code, f.message)
    if outcome.alert:
        log.warning("compliance_sweep: alert: %s", outcome.alert.message)
    for revocation_id in outcome.not_in_force:
        log.error("compliance_sweep: revocation %s is no longer in force (alerted)", revocation_id)


def _work_item(trigger: str, handler, msg: func.QueueMessage) -> None:
    """One work queue message to its handler. A message no retry can fix (not JSON, or refused as malformed) is
    logged without its body and dropped; any other failure raises, so the host retries it, then poisons it."""
    try:
        message = json.loads(msg.get_body())
    except ValueError:
        message = None  # judged (and dropped) as malformed by the handler, like any other bad message
    try:
        outcome = bootstrap.deps().call(handler, message)
    except MalformedMessage as exc:
        log.error("%s: dropped malformed message %s (dequeue %s): %s", trigger, msg.id, msg.dequeue_count, exc)
        return
    if getattr(outcome, "noteworthy", True):  # one line per decision: a re-wrap page that found nothing logs none
        log.info("%s: %s", trigger, json.dumps(outcome.to_json(), sort_keys=True))


@app.queue_trigger(arg_name="msg", queue_name=ALERT_QUEUE, connection="AzureWebJobsStorage")
def deliver_alerts(msg: func.QueueMessage) -> None:
    """Drains the alert outbox to the Event Grid topic. A failure raises: the host retries, then poisons."""
    try:
        message = json.loads(msg.get_body())
    except ValueError:
        message = None  # judged (and dropped) as malformed below, like any other non-alert
    try:
        alert = bootstrap.deps().call(alerting.deliver_alert, message)
    except MalformedMessage as exc:
        # No retry can fix it. Logged (without the body) and dropped rather than retried into poison.
        log.error("deliver_alerts: dropped malformed message %s (dequeue %s): %s", msg.id, msg.dequeue_count, exc)
        return
    log.info("deliver_alerts: published %s %s %s", alert.severity.value, alert.type, alert.subject)


@app.queue_trigger(arg_name="msg", queue_name=REWRAP_QUEUE, connection="AzureWebJobsStorage")
def rewrap_worker(msg: func.QueueMessage) -> None:
    """One page of one shard's DEKs moved to the key's new version. Partial failures are re-enqueued by the handler;
    it raises only when the whole page failed, so the host retries it, then poisons it (`cmk-rewrap-poison`)."""
    _work_item("rewrap_worker", rewrap.rewrap_page, msg)


@app.queue_trigger(arg_name="msg", queue_name=f"{REWRAP_QUEUE}-poison", connection="AzureWebJobsStorage")
def rewrap_poisoned(msg: func.QueueMessage) -> None:
    """A re-wrap page the host gave up on: alert (high), so somebody knows its DEKs are not moving."""
    try:
        message = json.loads(msg.get_body())
    except ValueError:
        message = None
    alert = bootstrap.deps().call(rewrap.alert_poisoned_page, message)
    log.error("rewrap_poisoned: %s %s", alert.subject, json.dumps(alert.data, sort_keys=True))


@app.queue_trigger(arg_name="msg", queue_name=ACCESS_CHECK_QUEUE, connection="AzureWebJobsStorage")
def access_check(msg: func.QueueMessage) -> None:
    """The follow-up of an access remediation, once Key Vault has applied the RBAC change."""
    _work_item("access_check", access.follow_up_check, msg)


@app.queue_trigger(arg_name="msg", queue_name=REVOCATION_CHECK_QUEUE, connection="AzureWebJobsStorage")
def revocation_check(msg: func.QueueMessage) -> None:
    """A revocation's (or restoration's) verification, once Key Vault has had time to apply it."""
    _work_item("revocation_check", revocation.check_revocation, msg)


@app.queue_trigger(arg_name="msg", queue_name=MOVE_QUEUE, connection="AzureWebJobsStorage")
def consumer_moves(msg: func.QueueMessage) -> None:
    """One consumer moved to its key's current version: the ARM PATCH started once under a claim, then followed
    through delayed messages until it succeeds, fails (alert) or is given up; never waited on."""
    _work_item("consumer_moves", move_consumer, msg)


@app.queue_trigger(arg_name="msg", queue_name=f"{MOVE_QUEUE}-poison", connection="AzureWebJobsStorage")
def consumer_moves_poisoned(msg: func.QueueMessage) -> None:
    """A consumer move the host gave up on: alert (high), so somebody knows that consumer is not being moved."""
    try:
        message = json.loads(msg.get_body())
    except ValueError:
        message = None
    alert = bootstrap.deps().call(alert_poisoned_move, message)
    log.error("consumer_moves_poisoned: %s %s", alert.subject, json.dumps(alert.data, sort_keys=True))


@app.queue_trigger(arg_name="msg", queue_name=RECONCILE_QUEUE, connection="AzureWebJobsStorage")
def access_reconcile(msg: func.QueueMessage) -> None:
    """One managed key reconciled, as an access-change event asked (the event only enqueues)."""
    _work_item("access_reconcile", access.reconcile_queued, msg)
