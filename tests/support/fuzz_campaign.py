"""The fuzz campaign over the wire: the operator API driven by schemathesis from the document the app serves, and the
Event Grid webhooks fed generated and mutated events, against a running local system.

Checks, per request: never a 5xx; the answer conforms to the document (status code, content type, body schema,
headers); a request the document calls valid is not refused for its shape (a 400/415 would mean the document and the
parsers disagree). And no state change from any request that must not change anything: the emulated cloud (role
assignments, every key version's attributes and rotation policy, the vault, the consumers' documents, the alerts that
reached the topic) and the app's tables (claims, DEKs, revocations, budget; not the audit trail, where every call
may leave a record) are fingerprinted after every batch of such requests, and the batch is named when it differs.

The only requests allowed to change state are rotations that name a key the inventory manages (decided from the
body before sending, the way the parser would resolve it): the batch before one is closed with a fingerprint, and
after it the fingerprint is re-taken once the system is quiet again. Generated keys almost never name one, and each
campaign sends one on purpose first, so the fingerprint is shown to see a real change.

Used by tests/e2e/test_fuzz_over_the_wire.py (bounded) and bench/fuzz.py (full size).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seed_of
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localrun.system import LocalSystem
from shared.inventory.model import UnknownKey

AUDIT_TABLE = "cmkaudit"
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]
BATCH = 40  # requests between two fingerprints (all of them must leave state as it was)


# -- the state that a rejected request must not change ------------------------------------------------------------
@dataclass
class Fingerprint:
    """Reads the emulated cloud and the app's tables over their wire APIs; `take()` is one digest plus its parts."""

    system: LocalSystem
    _arm_token: str | None = None

    def parts(self) -> dict[str, Any]:
        cloud = self.system.cloud
        inventory = cloud.inventory()
        # Read as the app (Crypto Officer): the operator holds no standing access to the vault's data plane.
        vault = cloud.keyvault(cloud.identities.app)
        parts: dict[str, Any] = {}
        try:
            for managed in inventory.keys:
                versions = sorted(vault.list_versions(managed.ref), key=lambda v: v.version)
                parts[f"key:{managed.name}"] = [
                    (v.version, v.enabled, sorted(v.ops), str(v.expires), str(v.not_before)) for v in versions
                ]
                parts[f"policy:{managed.name}"] = repr(vault.get_rotation_policy(managed.ref))
                for consumer in managed.consumers:
                    if consumer.resource_id:
                        parts[f"consumer:{consumer.resource_id}"] = _without(
                            cloud.get_resource(consumer.resource_id), ("etag",)
                        )
        finally:
            vault.close()
        sub = f"/subscriptions/{cloud.subscription_id}"
        assignments = cloud.request(
            "GET", f"{cloud.arm_url}{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            token=True,
        )["value"]  # fmt: skip
        parts["role_assignments"] = sorted(
            (a["id"].lower(), a["properties"]["roleDefinitionId"].lower(), a["properties"]["principalId"])
            for a in assignments
        )
        parts["vault"] = cloud.request(
            "GET", f"{cloud.arm_url}{cloud.vault_resource_id}?api-version=2023-07-01", token=True
        )["properties"]
        parts["alerts"] = sorted(e.get("id", "") for e in cloud.admin("GET", "/eventgrid/topic-events")["value"])
        parts.update(self._tables())
        return parts

    def _tables(self) -> dict[str, Any]:
        from azure.data.tables import TableServiceClient

        service = TableServiceClient.from_connection_string(self.system.storage_connection)
        out: dict[str, Any] = {}
        with service:
            for table in service.list_tables():
                if table.name.lower() == AUDIT_TABLE:
                    continue
                client = service.get_table_client(table.name)
                rows = sorted(
                    (
                        e["PartitionKey"],
                        e["RowKey"],
                        e.metadata.get("etag"),
                        json.dumps(dict(e), sort_keys=True, default=str),
                    )
                    for e in client.list_entities()
                )
                out[f"table:{table.name}"] = rows
        return out

    def take(self) -> tuple[str, dict[str, Any]]:
        parts = self.parts()
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        return digest, parts

    def queued(self) -> int:
        """Messages in the app's queues, the invisible ones included: a follow-up waiting out its delay (a consumer's
        move, an access check) is work still in flight, however quiet the state looks meanwhile."""
        from azure.storage.queue import QueueServiceClient

        service = QueueServiceClient.from_connection_string(self.system.storage_connection)
        with service:
            return sum(
                service.get_queue_client(q.name).get_queue_properties().approximate_message_count or 0
                for q in service.list_queues()
                if not q.name.endswith("-poison")
            )

    def settle(self, timeout: float = 90.0, quiet: int = 3, every: float = 0.5) -> tuple[str, dict[str, Any]]:
        """The fingerprint once no work is queued and it has stayed the same `quiet` reads in a row (a rotation's
        events, moves and follow-ups still flowing)."""
        deadline = time.monotonic() + timeout
        last, parts = self.take()
        same = 1
        while same < quiet or self.queued():
            if time.monotonic() > deadline:
                raise AssertionError("the system did not settle: its state kept changing or work stayed queued")
            time.sleep(every)
            now, parts = self.take()
            same = same + 1 if now == last else 1
            last = now
        return last, parts


def _without(document: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in names}


def changed_parts(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


# -- what a campaign counts --------------------------------------------------------------------------------------
@dataclass
class RouteCounts:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: int = 0
    state_changes: int = 0  # batches of must-not-change requests after which the fingerprint differed
    nonconforming: int = 0
    refused_valid: int = 0  # a request the document calls valid refused for its shape
    allowed_changes: int = 0  # rotations of a managed key, sent between fingerprints
    host_refused: int = 0  # refused by the HTTP server before any function ran (e.g. a URL over 8190 bytes)
    modes: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        if len(self.violations) < 10:
            self.violations.append(text[:1500])

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
            "server_errors": self.server_errors,
            "state_changes": self.state_changes,
            "nonconforming": self.nonconforming,
            "refused_valid": self.refused_valid,
            "allowed_changes": self.allowed_changes,
            "host_refused": self.host_refused,
            "modes": dict(self.modes),
            "violations": self.violations,
        }

    @property
    def clean(self) -> bool:
        return not (self.server_errors or self.state_changes or self.nonconforming or self.refused_valid)


class Guard:
    """Keeps the last fingerprint, closes a batch of must-not-change requests with a new one, and re-baselines around
    the requests allowed to change state."""

    def __init__(self, fingerprint: Fingerprint, batch: int = BATCH) -> None:
        self.fingerprint = fingerprint
        self.batch = batch
        self.digest, self.parts = fingerprint.settle()
        self.pending: list[tuple[RouteCounts, str]] = []
        self.fingerprints = 1

    def after_unchanging(self, counts: RouteCounts, description: str) -> None:
        self.pending.append((counts, description))
        if len(self.pending) >= self.batch:
            self.close()

    def close(self) -> None:
        if not self.pending:
            return
        digest, parts = self.fingerprint.take()
        self.fingerprints += 1
        if digest != self.digest:
            # Give anything still in flight its moment, then judge: a change that stays is one.
            digest, parts = self.fingerprint.settle()
        if digest != self.digest:
            changed = changed_parts(self.parts, parts)
            for counts in {id(c): c for c, _ in self.pending}.values():
                counts.state_changes += 1
                shown = "; ".join(d for c, d in self.pending if c is counts)[:400]
                counts.violation(f"state changed ({', '.join(changed)}) after a batch of: {shown}")
            self.digest, self.parts = digest, parts
        self.pending.clear()

    def around_changing(self, send: Callable[[], Any]) -> Any:
        self.close()
        result = send()
        self.digest, self.parts = self.fingerprint.settle()
        self.fingerprints += 1
        return result


# -- the operator API --------------------------------------------------------------------------------------------
@dataclass
class Api:
    system: LocalSystem

    @property
    def url(self) -> str:
        return self.system.devhost["url"]

    @property
    def key_header(self) -> dict[str, str]:
        return {"x-functions-key": self.system.devhost["function_key"]}

    def document(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/openapi.json", headers=self.key_header, timeout=30)
        response.raise_for_status()
        return response.json()


def may_change_state(body: bytes, inventory: Any) -> bool:
    """Whether a rotation request could rotate: only a JSON object whose `key` the inventory resolves can (anything
    else is refused or 404 by the parser and the handler). Errs towards yes: the guard re-baselines around it."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(document, dict) or not isinstance(document.get("key"), str):
        return False
    try:
        inventory.key(document["key"])
    except UnknownKey:
        return False
    return True


def fuzz_operations(
    system: LocalSystem, guard: Guard, *, examples: int, seed: int = 0, progress: Callable[[str], None] | None = None
) -> dict[str, RouteCounts]:
    """Every operation of the served document: `examples` positive and `examples` negative cases from schemathesis,
    plus `examples` raw bodies for each operation that takes one."""
    api = Api(system)
    schema = schemathesis.openapi.from_dict(api.document())
    inventory = system.cloud.inventory()
    session = requests.Session()
    results: dict[str, RouteCounts] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        route = f"{operation.method.upper()} /api{operation.path}"
        counts = results.setdefault(route, RouteCounts())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run_mode(api, session, guard, operation, mode, counts, inventory, examples, seed)
            if progress:
                progress(f"{route} {mode.value}: {counts.requests} requests")
        _run_unauthenticated(api, session, guard, operation, counts)
        if operation.body:
            _run_raw(api, session, guard, operation, counts, inventory, examples, seed)
            if progress:
                progress(f"{route} raw: {counts.requests} requests")
    guard.close()
    return results


def _run_unauthenticated(api, session, guard, operation, counts) -> None:
    """No key, a wrong key in the header, and one in `code`: the host's 401, as documented, before the app runs."""
    # A path template's parameters get a well-formed value: the 401 must come before the app reads them.
    path_parameters = {name: "0" * 32 for name in re.findall(r"\{(\w+)\}", operation.path)}
    url = f"{api.url}/api{operation.path.format(**path_parameters)}"
    body = json.dumps({"key": "mysql-encryption-key", "reason": "no key"}) if operation.body else None
    for headers, params in (({}, {}), ({"x-functions-key": "wrong"}, {}), ({}, {"code": "wrong"})):
        headers = {**headers, "Content-Type": "application/json"} if body else headers
        response = session.request(operation.method.upper(), url, headers=headers, params=params, data=body, timeout=60)
        description = f"unauthenticated {operation.method.upper()} {operation.path} {sorted(headers)} {sorted(params)}"
        case = operation.Case(media_type="application/json", path_parameters=path_parameters or None)
        _judge(case, response, GenerationMode.NEGATIVE, counts, description)
        counts.modes["unauthenticated"] += 1
        if response.status_code != 401:
            counts.nonconforming += 1
            counts.violation(f"{response.status_code}, not 401, for {description}")
        guard.after_unchanging(counts, description)


def _run_mode(api, session, guard, operation, mode, counts, inventory, examples, seed) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        counts.modes[mode.value] += 1
        _send_case(api, session, guard, case, mode, counts, inventory)

    # Reproducible (the same seed sends the same requests); an operation with few distinct cases (no parameters)
    # is run again under the next seed until it has had its count.
    start = counts.modes[mode.value]
    for attempt in range(examples):
        seed_of(seed + attempt)(run)()
        if counts.modes[mode.value] - start >= examples:
            break


def _send_case(api, session, guard, case, mode, counts, inventory) -> None:
    kwargs = case.as_transport_kwargs(base_url=f"{api.url}/api", headers=api.key_header)
    kwargs.pop("base_url", None)
    kwargs["timeout"] = 60
    body = kwargs.get("data")
    if body is None and kwargs.get("json") is not None:
        body = json.dumps(kwargs["json"]).encode()
    changing = (
        case.method.upper() == "POST" and isinstance(body, bytes | str) and may_change_state(_bytes(body), inventory)
    )

    def send() -> requests.Response:
        return session.request(**kwargs)

    response = guard.around_changing(send) if changing else send()
    description = f"{mode.value} {case.as_curl_command(headers=api.key_header, base_url=f'{api.url}/api')}"
    description = description.replace(api.key_header["x-functions-key"], "<function-key>")
    _judge(case, response, mode, counts, description)
    if changing:
        counts.allowed_changes += 1
    else:
        guard.after_unchanging(counts, description[:300])


def _bytes(body: bytes | str) -> bytes:
    return body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")


def _judge(case, response: requests.Response, mode: GenerationMode, counts: RouteCounts, description: str) -> None:
    counts.requests += 1
    counts.statuses[response.status_code] += 1
    if response.status_code >= 500:
        counts.server_errors += 1
        counts.violation(f"{response.status_code} for {description}: {response.text[:200]}")
        return
    if _host_refused(response):
        counts.host_refused += 1
        return
    try:
        case.validate_response(response, checks=CHECKS)
    except BaseExceptionGroup as exc:  # schemathesis raises a group of failures; each names the check
        counts.nonconforming += 1
        counts.violation(f"not as documented ({str(exc)[:300]}) for {description}")
    if mode is GenerationMode.POSITIVE and response.status_code in (400, 415) and not _refusal_expected(response):
        counts.refused_valid += 1
        counts.violation(f"valid per the document, refused: {response.text[:300]} for {description}")


def _host_refused(response: requests.Response) -> bool:
    """A 4xx the HTTP server gave before any function ran (a request line or headers over its limit): plain text,
    not the app's JSON, and not the key check's 401. Azure's front end has such limits too (its own numbers)."""
    content_type = response.headers.get("Content-Type", "")
    return 400 <= response.status_code < 500 and response.status_code != 401 and "json" not in content_type


def _refusal_expected(response: requests.Response) -> bool:
    """A continuation token is opaque: one the trail did not issue is refused though it has the documented shape."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return error.get("field") == "continuation"


# Raw bodies for routes that take JSON: what a schema-driven generator does not send (wrong media types, bytes that
# are not UTF-8, duplicate fields, JSON constants, oversize, deep nesting).
def raw_bodies() -> st.SearchStrategy[tuple[str | None, bytes]]:
    content_types = st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "APPLICATION/JSON",
            "",
            None,
        ]
    )
    text = st.text(max_size=40)
    json_bodies = st.one_of(
        st.builds(lambda k, r: json.dumps({"key": k, "reason": r}), text, text),
        st.builds(
            lambda k: f'{{"key": "{k}", "key": "{k}", "reason": "x"}}', st.from_regex(r"[a-z-]{1,10}", fullmatch=True)
        ),
        st.sampled_from(["NaN", "[NaN]", '{"key": Infinity}', "null", "[]", '""', "0", "{}", "[" * 5000, "{" * 3]),
        st.builds(lambda n: json.dumps({"key": "k", "reason": "x" * n}), st.integers(4000, 5000)),
        st.builds(lambda k, v: json.dumps({k: v}), text, st.one_of(st.integers(), st.booleans(), st.none(), text)),
    )
    bodies = st.one_of(
        json_bodies.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
        st.builds(lambda b: b'{"key": "' + b + b'", "reason": "x"}', st.binary(min_size=1, max_size=20)),
    )
    return st.tuples(content_types, bodies)


def _run_raw(api, session, guard, operation, counts, inventory, examples, seed) -> None:
    url = f"{api.url}/api{operation.path}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(sent=raw_bodies())
    def run(sent) -> None:
        content_type, body = sent
        counts.modes["raw"] += 1
        headers = dict(api.key_header)
        if content_type is not None:
            headers["Content-Type"] = content_type
        case = operation.Case(media_type="application/json")
        changing = may_change_state(body, inventory) and (content_type or "").lower().startswith("application/json")

        def send() -> requests.Response:
            return session.request(operation.method.upper(), url, data=body, headers=headers, timeout=60)

        response = guard.around_changing(send) if changing else send()
        description = (
            f"raw {operation.method.upper()} {operation.path} Content-Type={content_type!r} body={body[:120]!r}"
        )
        _judge(case, response, GenerationMode.NEGATIVE, counts, description)
        if changing:
            counts.allowed_changes += 1
        else:
            guard.after_unchanging(counts, description[:300])

    seed_of(seed)(run)()


def prove_the_fingerprint_sees_a_rotation(system: LocalSystem, guard: Guard, key: str) -> dict[str, Any]:
    """One real rotation through the API, between fingerprints: it must show as a change (else the check is blind)."""
    api = Api(system)
    before = guard.parts
    response = guard.around_changing(
        lambda: requests.post(
            f"{api.url}/api/rotations",
            json={"key": key, "reason": "fuzz campaign: the fingerprint must see this"},
            headers=api.key_header,
            timeout=60,
        )
    )
    assert response.status_code == 201, response.text
    changed = changed_parts(before, guard.parts)
    assert f"key:{key}" in changed, changed
    return {"status": response.status_code, "changed": changed}


# -- the Event Grid webhooks -------------------------------------------------------------------------------------
@dataclass
class WebhookCounts:
    deliveries: int = 0
    events: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: int = 0
    worker_refused: int = 0  # 500: the worker could not decode eventTime/time, before any app code ran
    invocations: int = 0
    rejected_logged: int = 0
    must_reject: int = 0
    not_rejected: int = 0  # a malformed event the app did not log as rejected
    state_changes: int = 0
    violations: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        if len(self.violations) < 10:
            self.violations.append(text[:1500])

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.deliveries,
            "events": self.events,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": self.server_errors,
            "worker_refused": self.worker_refused,
            "invocations": self.invocations,
            "rejected_logged": self.rejected_logged,
            "must_reject": self.must_reject,
            "not_rejected": self.not_rejected,
            "state_changes": self.state_changes,
            "violations": self.violations,
        }

    @property
    def clean(self) -> bool:
        return not (self.server_errors or self.state_changes or self.not_rejected)


def base_events(system: LocalSystem) -> dict[str, list[dict[str, Any]]]:
    """Valid events, one of each kind each webhook receives, chosen so that acting on them changes nothing in a
    system without drift: a new version that is already current (consumers already on it), the vault's access
    policies changed (reconcile: nothing to do), role assignments written or deleted at a key (reconcile)."""
    cloud = system.cloud
    inventory = cloud.inventory()
    vault = cloud.keyvault(cloud.identities.app)
    try:
        managed = inventory.keys[0]
        current = vault.get_key(managed.ref)
    finally:
        vault.close()
    vault_id = cloud.vault_resource_id
    key_id = f"{vault_id}/keys/{managed.name}"
    keyvault = [
        {
            "id": "base-kv-new-version",
            "topic": vault_id,
            "subject": managed.name,
            "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
            "eventTime": "2026-11-03T08:15:42.4717305Z",
            "data": {
                "Id": f"{cloud.vault_url}/keys/{managed.name}/{current.version}",
                "VaultName": cloud.vault_name,
                "ObjectType": "Key",
                "ObjectName": managed.name,
                "Version": current.version,
                "NBF": None,
                "EXP": None,
            },
            "dataVersion": "1",
            "metadataVersion": "1",
        },
        {
            "id": "base-kv-policy",
            "topic": vault_id,
            "subject": cloud.vault_name,
            "eventType": "Microsoft.KeyVault.VaultAccessPolicyChanged",
            "eventTime": "2026-11-03T09:00:00.0000000Z",
            "data": {
                "Id": cloud.vault_url,
                "VaultName": cloud.vault_name,
                "ObjectType": "Vault",
                "ObjectName": cloud.vault_name,
                "Version": "",
                "NBF": None,
                "EXP": None,
            },
            "dataVersion": "1",
            "metadataVersion": "1",
        },
    ]
    role = []
    for operation, event_type in (
        ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Resources.ResourceWriteSuccess"),
        ("Microsoft.Authorization/roleAssignments/delete", "Microsoft.Resources.ResourceDeleteSuccess"),
    ):
        uri = f"{key_id}/providers/Microsoft.Authorization/roleAssignments/3f2b8c1e-5d4a-4e6f-9b7c-1a2d3e4f5a6b"
        role.append(
            {
                "id": f"base-{operation.rsplit('/', 1)[1]}",
                "topic": f"/subscriptions/{cloud.subscription_id}/resourceGroups/{cloud.resource_group}",
                "subject": uri,
                "eventType": event_type,
                "eventTime": "2026-11-03T10:21:07.2841731Z",
                "data": {
                    "authorization": {"scope": uri, "action": operation},
                    "operationName": operation,
                    "resourceUri": uri,
                    "status": "Succeeded",
                    "subscriptionId": cloud.subscription_id,
                    "tenantId": cloud.tenant_id,
                },
                "dataVersion": "2",
                "metadataVersion": "1",
            }
        )
    return {"keyvault_events": keyvault, "role_assignment_events": role}


HUGE = "x" * 100_000
UNKNOWN_TYPES = ["Contoso.Something.Happened", "Microsoft.KeyVault.SecretNearExpiry", "", "microsoft.keyvault.x", "☃"]
BAD_TIMES = ["", "yesterday", "2026-13-45T99:99:99Z", "0000-00-00T00:00:00Z", "1e400", "9999-12-31T23:59:59-23:59"]
ODD_VALUES = [None, True, 0, -1, 1.5e308, "", " ", HUGE, [], {}, ["x"], {"a": None}, "\u0000\u001b[31m\n", "%s%n"]


def _json_object_text(value: Any) -> bool:
    if not isinstance(value, str) or value.strip()[:1] not in ("{", "["):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except (ValueError, RecursionError):
        return False


def _mutations(base: dict[str, Any], index: int) -> st.SearchStrategy[tuple[dict[str, Any], bool]]:
    """(event, must be rejected). The id stays `fz-<n>` where the outcome is checked, so its log line can be found."""
    data_fields = sorted(base["data"]) if isinstance(base.get("data"), dict) else []
    odd = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=30), st.integers(), st.floats(allow_nan=True))

    def copy() -> dict[str, Any]:
        return json.loads(json.dumps(base))

    def drop_data_field(name: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["data"].pop(name, None)
        # A Key Vault event names its key twice over (data.Id, and ObjectName + Version + VaultName), and the parser
        # is tolerant by design (Event Grid has changed field casing before): losing any one field leaves it
        # meaningful, so no single drop must be refused; it must only never crash or change state.
        return event, False

    def retype_data_field(name: str, value: Any) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["data"][name] = value
        return event, False

    def retype_data(value: Any) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["data"] = value
        # A vault-wide event needs no data (the topic names the vault), and data sent as a JSON string is read as
        # its object: only a key event, or a value that is neither, must be refused.
        tolerated = base["eventType"] == "Microsoft.KeyVault.VaultAccessPolicyChanged" and (
            value is None or _json_object_text(value)
        )
        return event, not isinstance(value, dict) and not tolerated

    def unknown_type(event_type: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["eventType"] = event_type
        return event, event_type != ""  # "" is refused by the host before the app sees it

    def bad_time(when: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["eventTime"] = when
        return event, False

    def elsewhere(name: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        if "Id" in event["data"]:
            event["data"]["Id"] = f"https://{name}.vault.azure.net/keys/{name}/0123456789abcdef0123456789abcdef"
            event["data"]["VaultName"] = name
        else:
            other = f"/subscriptions/{name}/resourceGroups/{name}/providers/Microsoft.Authorization/roleAssignments/x"
            event["data"]["resourceUri"] = other
            event["data"]["authorization"] = {"scope": other, "action": event["data"]["operationName"]}
            event["subject"] = other
        # A vault-wide event only asks for a reconcile of the vault it came from (from the source of truth), so
        # only a key event about another vault must be refused.
        return event, base["eventType"] == "Microsoft.KeyVault.KeyNewVersionCreated"

    def drop_envelope(name: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        event.pop(name, None)
        return event, False

    def huge(name: str) -> tuple[dict[str, Any], bool]:
        event = copy()
        event[name] = HUGE
        return event, name == "eventType"

    def recursive(value: Any) -> tuple[dict[str, Any], bool]:
        event = copy()
        event["data"] = {"nested": value}
        return event, base["eventType"] == "Microsoft.KeyVault.KeyNewVersionCreated"

    deep = st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    )
    strategies = [
        st.builds(unknown_type, st.one_of(st.sampled_from(UNKNOWN_TYPES), st.text(min_size=1, max_size=40))),
        st.builds(bad_time, st.one_of(st.sampled_from(BAD_TIMES), st.text(max_size=30))),
        st.builds(retype_data, odd),
        st.builds(elsewhere, st.from_regex(r"[a-z][a-z0-9]{2,20}", fullmatch=True)),
        st.builds(drop_envelope, st.sampled_from(["topic", "subject", "dataVersion", "metadataVersion", "data"])),
        st.builds(huge, st.sampled_from(["subject", "topic", "eventType"])),
        st.builds(recursive, deep),
    ]
    if data_fields:
        strategies += [
            st.builds(drop_data_field, st.sampled_from(data_fields)),
            st.builds(retype_data_field, st.sampled_from(data_fields), odd),
        ]
    return st.one_of(strategies)


def generated_events() -> st.SearchStrategy[tuple[Any, bool]]:
    """Events from nothing: any JSON object with the envelope's names, of any value, and JSON that is no event.
    Times are mostly valid, so that most deliveries reach the app rather than fail in the worker's decoding."""
    value = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
    when = st.one_of(st.sampled_from(["2026-11-03T08:15:42Z", "2026-11-03T08:15:42.4717305Z"]), st.text(max_size=30))
    return st.one_of(
        st.fixed_dictionaries(
            {
                "id": st.text(min_size=1, max_size=20),
                "eventType": st.text(min_size=1, max_size=40),
                "subject": st.text(max_size=20),
                "eventTime": when,
            },
            optional={
                "data": st.one_of(value, st.dictionaries(st.text(max_size=10), value, max_size=5)),
                "topic": value,
                "dataVersion": value,
            },
        ),
        st.fixed_dictionaries(
            {
                "specversion": st.just("1.0"),
                "id": st.text(min_size=1, max_size=20),
                "source": st.text(min_size=1, max_size=30),
                "type": st.text(min_size=1, max_size=40),
            },
            optional={"data": value, "time": when, "subject": value},
        ),
        value,
    ).map(lambda e: (e, False))


def fuzz_webhooks(
    system: LocalSystem, guard: Guard, *, examples: int, seed: int = 0, progress: Callable[[str], None] | None = None
) -> dict[str, WebhookCounts]:
    """For each Event Grid function: `examples` deliveries of 1-5 events each, mutated from its base events or
    generated from nothing, over HTTP as Event Grid delivers them."""
    bases = base_events(system)
    url = f"{system.devhost['url']}/runtime/webhooks/eventgrid"
    session = requests.Session()
    results: dict[str, WebhookCounts] = {}
    rng = random.Random(seed)
    for function, events in bases.items():
        counts = results.setdefault(f"POST /runtime/webhooks/eventgrid?functionName={function}", WebhookCounts())
        # Acted on once before the campaign, so that what they do (a re-wrap of no DEKs, a reconcile) is done.
        for base in events:
            assert _deliver(session, url, system, function, [base]).status_code == 202
        guard.digest, guard.parts = guard.fingerprint.settle()
        one = st.one_of(*(_mutations(base, i) for i, base in enumerate(events)), generated_events())
        _run_webhook(session, url, system, guard, function, one, counts, examples, seed, rng)
        guard.close()
        if progress:
            progress(f"{function}: {counts.deliveries} deliveries, {counts.events} events")
    return results


def _run_webhook(session, url, system, guard, function, one, counts, examples, seed, rng) -> None:
    numbered = iter(range(10**9))

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(batch=st.lists(one, min_size=1, max_size=5), as_object=st.booleans())
    def run(batch, as_object) -> None:
        expect: dict[str, bool] = {}
        sent = []
        for event, must_reject in batch:
            if isinstance(event, dict) and "id" in event and (must_reject or rng.random() < 0.5):
                event = {**event, "id": f"fz-{next(numbered)}"}
                expect[event["id"]] = must_reject
            sent.append(event)
        body = sent[0] if as_object and len(sent) == 1 else sent
        _deliver_and_judge(session, url, system, guard, function, body, sent, expect, counts)

    seed_of(seed)(run)()


def _deliver(session, url, system, function, body) -> requests.Response:
    return session.post(
        url,
        params={"functionName": function, "code": system.devhost["eventgrid_key"]},
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
        data=json.dumps(body, allow_nan=True),
        timeout=120,
    )


def _deliver_and_judge(session, url, system, guard, function, body, sent, expect, counts: WebhookCounts) -> None:
    child = system.devhost_child()
    mark = len(child.lines)
    response = _deliver(session, url, system, function, body)
    counts.deliveries += 1
    counts.events += len(sent)
    counts.statuses[response.status_code] += 1
    description = f"{function} {json.dumps(body, allow_nan=True)[:300]}"
    if response.status_code >= 500:
        time.sleep(0.2)
        why = [line for line in child.lines[mark:] if "Error" in line or "Exception" in line or "raise" in line]
        if _worker_refused_time(body):
            counts.worker_refused += 1
        else:
            counts.server_errors += 1
            counts.violation(f"{response.status_code} for {description}: {' | '.join(why)[-800:]}")
    if response.status_code == 202:
        counts.invocations += len(sent)
        _check_logged(child, mark, function, expect, counts, description)
    if not _alive(system):
        counts.server_errors += 1
        counts.violation(f"the host stopped answering after {description}")
        raise AssertionError("devhost died")
    guard.after_unchanging(counts, description[:300])  # type: ignore[arg-type]


def _worker_refused_time(body: Any) -> bool:
    """Whether some event of the delivery has an eventTime (or CloudEvent time) that azure.functions cannot parse:
    the worker's converter raises before the function runs, in Azure as in devhost, so the delivery fails (500) and
    Event Grid would retry it. Event Grid itself never delivers such an event (it sets or validates the time)."""
    from azure.functions.eventgrid import EventGridEventInConverter

    for event in body if isinstance(body, list) else [body]:
        if not isinstance(event, dict):
            continue
        for name in ("eventTime", "time"):
            try:
                EventGridEventInConverter._parse_datetime(event.get(name))
            except (ValueError, TypeError, OverflowError):
                return True
    return False


def _check_logged(child, mark: int, function: str, expect: dict[str, bool], counts: WebhookCounts, description: str):
    """Every checked event has its outcome line; a malformed one says `rejected`."""
    wanted = dict(expect)
    deadline = time.monotonic() + 10
    while wanted and time.monotonic() < deadline:
        for line in child.lines[mark:]:
            if f"{function}: " not in line:
                continue
            for event_id in list(wanted):
                if re.search(rf"\bid={re.escape(event_id)}(?![0-9])", line):
                    rejected = f"{function}: rejected" in line
                    counts.rejected_logged += rejected
                    if wanted.pop(event_id):
                        counts.must_reject += 1
                        if not rejected:
                            counts.not_rejected += 1
                            counts.violation(f"not rejected: {line[:200]} for {description}")
        if wanted:
            time.sleep(0.05)
    for event_id, must_reject in wanted.items():
        counts.violation(f"no outcome logged for {event_id} in {description}")
        if must_reject:
            counts.must_reject += 1
            counts.not_rejected += 1


def _alive(system: LocalSystem) -> bool:
    try:
        return requests.get(f"{system.devhost['url']}/", timeout=30).status_code == 200
    except requests.RequestException:
        return False


def campaign(
    system: LocalSystem, *, examples: int, seed: int = 0, progress=None, parts=("api", "webhooks")
) -> dict[str, Any]:
    """The campaign on a system of its own; returns the JSON summary (per route, and whether all is clean)."""
    started = time.monotonic()
    guard = Guard(Fingerprint(system))
    proof = prove_the_fingerprint_sees_a_rotation(system, guard, system.cloud.inventory().keys[-1].name)
    api = fuzz_operations(system, guard, examples=examples, seed=seed, progress=progress) if "api" in parts else {}
    hooks = fuzz_webhooks(system, guard, examples=examples, seed=seed, progress=progress) if "webhooks" in parts else {}
    routes = {**{k: v.to_json() for k, v in api.items()}, **{k: v.to_json() for k, v in hooks.items()}}
    return {
        "examples": examples,
        "seed": seed,
        "fingerprint_sees_rotation": proof["changed"],
        "fingerprints": guard.fingerprints,
        "routes": routes,
        "clean": all(v.clean for v in api.values()) and all(v.clean for v in hooks.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
