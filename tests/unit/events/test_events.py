"""shared.events: every quirk of the payloads Azure sends, every way they can be wrong, and that it never raises."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.events import (
    KeyExpired,
    KeyNearExpiry,
    KeyNewVersionCreated,
    ParsedEvent,
    Rejection,
    RejectReason,
    RoleAssignmentChanged,
    SubscriptionValidation,
    VaultAccessPolicyChanged,
    describe,
    parse_delivery,
    parse_event,
)
from shared.model import KeyRef
from tests.unit import event_samples as s

TYPED = (
    KeyNewVersionCreated,
    KeyNearExpiry,
    KeyExpired,
    VaultAccessPolicyChanged,
    RoleAssignmentChanged,
    SubscriptionValidation,
)


# --- a small inventory that satisfies shared.events.ManagedScope --------------------------------------------------


@dataclass(frozen=True)
class FakeVault:
    name: str
    url: str
    resource_id: str


@dataclass(frozen=True)
class FakeKey:
    name: str
    vault: FakeVault

    @property
    def ref(self) -> KeyRef:
        return KeyRef(vault_url=self.vault.url, name=self.name)

    @property
    def arm_scope(self) -> str:
        return f"{self.vault.resource_id}/keys/{self.name}"


class FakeScope:
    """Matches the way the inventory is meant to: names and ARM ids case-insensitively, hosts by lower-case netloc."""

    def __init__(self, keys: list[FakeKey]) -> None:
        self.keys = keys

    def find_vault(
        self, *, vault_name: str | None = None, vault_host: str | None = None, resource_id: str | None = None
    ) -> FakeVault | None:
        for vault in {k.vault for k in self.keys}:
            if vault_name is not None and vault.name.lower() == vault_name.lower():
                return vault
            if vault_host is not None and urlsplit(vault.url).netloc.lower() == vault_host.lower():
                return vault
            if resource_id is not None and vault.resource_id.lower() == resource_id.rstrip("/").lower():
                return vault
        return None

    def find_key(
        self, *, key_name: str, vault_name: str | None = None, vault_host: str | None = None
    ) -> FakeKey | None:
        vault = self.find_vault(vault_name=vault_name, vault_host=vault_host)
        if vault is None:
            return None
        return next((k for k in self.keys if k.vault == vault and k.name.lower() == key_name.lower()), None)

    def keys_under_scope(self, scope: str) -> list[FakeKey]:
        if scope == "/":
            return list(self.keys)
        prefix = scope.rstrip("/").lower()
        return [k for k in self.keys if k.arm_scope.lower() == prefix or k.arm_scope.lower().startswith(prefix + "/")]


VAULT = FakeVault(s.VAULT_NAME, s.VAULT_URL, s.VAULT_RESOURCE_ID)
AKS = FakeKey(s.AKS_KEY, VAULT)
MYSQL = FakeKey(s.MYSQL_KEY, VAULT)
SCOPE = FakeScope([AKS, MYSQL])


def only(body: Any, scope: FakeScope = SCOPE) -> Any:
    results = parse_delivery(body, scope)
    assert len(results) == 1, results
    return results[0]


def rejected(body: Any, reason: RejectReason, scope: FakeScope = SCOPE) -> Rejection:
    item = only(body, scope)
    assert isinstance(item, Rejection), item
    assert item.reason is reason, item
    return item


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


# --- Key Vault key events -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "cls"),
    [
        ("Microsoft.KeyVault.KeyNewVersionCreated", KeyNewVersionCreated),
        ("Microsoft.KeyVault.KeyNearExpiry", KeyNearExpiry),
        ("Microsoft.KeyVault.KeyExpired", KeyExpired),
    ],
)
@pytest.mark.parametrize("envelope", [s.event_grid_key_event, s.cloud_event_key_event])
def test_key_events_in_both_envelopes_become_typed_events(event_type, cls, envelope):
    item = only(envelope(event_type, name=s.MYSQL_KEY))

    assert type(item) is cls
    assert item.event_type == event_type
    assert item.key is MYSQL
    assert item.key_ref == MYSQL.ref
    assert item.key_id == f"{s.VAULT_URL}/keys/{s.MYSQL_KEY}/{s.VERSION}"
    assert item.version == s.VERSION
    assert item.vault_name == s.VAULT_NAME
    assert (item.nbf, item.exp) == (at(s.NBF), at(s.EXP))
    assert item.event_time == datetime(2025, 11, 3, 8, 15, 42, 471730, tzinfo=UTC)
    assert item.topic == s.VAULT_RESOURCE_ID
    assert item.schema == ("CloudEvents" if envelope is s.cloud_event_key_event else "EventGrid")


def test_published_sample_quirks_whitespace_in_names_and_values_and_numeric_strings():
    item = only(s.published_sample_quirks())

    assert isinstance(item, KeyNearExpiry)
    assert item.key is MYSQL
    assert item.version == s.VERSION
    assert (item.nbf, item.exp) == (at(s.NBF), at(s.EXP))


def test_older_camel_case_schema():
    item = only(s.older_camel_case_key_event())

    assert isinstance(item, KeyExpired)
    assert (item.key, item.version, item.nbf) == (AKS, s.VERSION, at(s.NBF))


def _rename(obj: dict, transform) -> dict:
    return {transform(k): v for k, v in obj.items()}


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda e: {**_rename(e, str.upper), "DATA": _rename(e["data"], str.upper)}, id="UPPER names"),
        pytest.param(lambda e: {**_rename(e, str.lower), "data": _rename(e["data"], str.lower)}, id="lower names"),
        pytest.param(
            lambda e: {**_rename(e, lambda k: f" {k}\t"), " data\t": _rename(e["data"], lambda k: f"{k} ")},
            id="padded names",
        ),
        pytest.param(lambda e: {**e, "eventType": "microsoft.keyvault.KEYNEARexpiry"}, id="event type casing"),
        pytest.param(lambda e: {**e, "eventType": "  Microsoft.KeyVault.KeyNearExpiry\n"}, id="event type padded"),
        pytest.param(lambda e: {**e, "data": {k: f"  {v} " for k, v in e["data"].items()}}, id="values padded"),
        pytest.param(lambda e: {**e, "id": f" {e['id']} ", "topic": f"{e['topic']} "}, id="envelope values padded"),
        pytest.param(
            lambda e: {**e, "data": {**e["data"], "Id": e["data"]["Id"].upper().replace(s.VERSION.upper(), s.VERSION)}},
            id="Id host and key name upper case",
        ),
    ],
)
def test_field_name_casing_and_whitespace_do_not_matter(mangle):
    original = s.event_grid_key_event("Microsoft.KeyVault.KeyNearExpiry", name=s.MYSQL_KEY)
    expected = only(copy.deepcopy(original))
    assert isinstance(expected, KeyNearExpiry)

    assert only(mangle(original)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (s.NBF, at(s.NBF)),
        (str(s.NBF), at(s.NBF)),
        (f"  {s.NBF}\n", at(s.NBF)),
        (s.NBF + 0.5, at(s.NBF + 0.5)),
        (f"{s.NBF}.5", at(s.NBF + 0.5)),
        ("1.7356896e9", at(s.NBF)),
        ("2025-01-01T00:00:00Z", at(s.NBF)),
        ("2025-01-01T01:00:00+01:00", at(s.NBF)),
        ("2025-01-01T00:00:00", at(s.NBF)),  # naive: Event Grid means UTC
        (None, None),
        ("", None),
    ],
)
def test_nbf_and_exp_accept_numbers_numeric_strings_and_iso_times(value, expected):
    event = s.event_grid_key_event()
    event["data"]["NBF"] = value
    event["data"]["exp"] = value
    del event["data"]["EXP"]

    item = only(event)

    assert isinstance(item, KeyNewVersionCreated)
    assert item.nbf == expected
    assert item.exp == expected
    assert item.nbf is None or item.nbf.tzinfo is not None


def test_version_and_key_name_fall_back_to_id_url_and_vault_to_vault_name_then_topic():
    only_id = s.event_grid_key_event(name=s.MYSQL_KEY)
    only_id["data"] = {"Id": only_id["data"]["Id"]}
    no_id = s.event_grid_key_event(name=s.MYSQL_KEY)
    del no_id["data"]["Id"]
    topic_only = s.event_grid_key_event(name=s.MYSQL_KEY)
    topic_only["data"] = {"ObjectName": s.MYSQL_KEY, "Version": s.VERSION}

    for payload in (only_id, no_id, topic_only):
        item = only(payload)
        assert isinstance(item, KeyNewVersionCreated), item
        assert (item.key, item.version) == (MYSQL, s.VERSION)


def test_id_host_decides_over_vault_name():
    foreign_name = s.event_grid_key_event()
    foreign_name["data"]["VaultName"] = s.OTHER_VAULT_NAME
    assert only(foreign_name).key is AKS

    foreign_host = s.event_grid_key_event()
    foreign_host["data"]["Id"] = f"https://{s.OTHER_VAULT_NAME}.vault.azure.net/keys/{s.AKS_KEY}/{s.VERSION}"
    rejection = rejected(foreign_host, RejectReason.OUTSIDE_INVENTORY)
    assert f"{s.OTHER_VAULT_NAME}.vault.azure.net" in rejection.message


def test_without_id_vault_name_decides_over_topic():
    foreign_topic = s.event_grid_key_event(topic=s.OTHER_VAULT_RESOURCE_ID)
    del foreign_topic["data"]["Id"]
    assert only(foreign_topic).key is AKS

    foreign_name = s.event_grid_key_event()
    del foreign_name["data"]["Id"]
    foreign_name["data"]["VaultName"] = s.OTHER_VAULT_NAME
    assert s.OTHER_VAULT_NAME in rejected(foreign_name, RejectReason.OUTSIDE_INVENTORY).message


def test_emulator_vault_is_matched_by_host_and_port():
    emulated = FakeVault("kv-local", "https://127.0.0.1:8443", s.VAULT_RESOURCE_ID)
    scope = FakeScope([FakeKey(s.AKS_KEY, emulated)])
    event = s.event_grid_key_event()
    event["data"]["Id"] = f"https://127.0.0.1:8443/keys/{s.AKS_KEY}/{s.VERSION}"

    item = only(event, scope)
    assert isinstance(item, KeyNewVersionCreated)
    assert item.key_ref.vault_host == "127.0.0.1:8443"
    assert item.vault_name == "kv-local"  # the inventory's name, not the event's

    event["data"]["Id"] = f"https://127.0.0.1:9443/keys/{s.AKS_KEY}/{s.VERSION}"
    rejected(event, RejectReason.OUTSIDE_INVENTORY, scope)


# --- what is not ours, unknown or outside the inventory ----------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        s.event_grid_key_event(
            f"Microsoft.KeyVault.{kind}{what}", data=s.key_vault_data(object_type=kind, collection=f"{kind.lower()}s")
        )
        for kind in ("Secret", "Certificate")
        for what in ("NewVersionCreated", "NearExpiry", "Expired")
    ]
    + [
        s.cloud_event_key_event(
            "microsoft.keyvault.secretnewversioncreated", data=s.key_vault_data(collection="secrets")
        ),
        {**s.subscription_validation(), "eventType": "Microsoft.EventGrid.SubscriptionDeletedEvent"},
    ],
    ids=lambda e: e.get("eventType") or e.get("type"),
)
def test_secret_certificate_and_other_subscribed_events_are_not_ours(event):
    rejection = rejected(event, RejectReason.NOT_OURS)
    assert rejection.event_type == (event.get("eventType") or event.get("type"))
    assert rejection.event_id == event["id"]


@pytest.mark.parametrize("event_type", ["Microsoft.Storage.BlobCreated", "Contoso.Items.ItemReceived", "KeyNearExpiry"])
def test_unknown_event_types(event_type):
    rejection = rejected(s.event_grid_key_event(event_type), RejectReason.UNKNOWN_TYPE)
    assert event_type in rejection.message


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(s.event_grid_key_event(name="payments-key"), id="unmanaged key in managed vault"),
        pytest.param(
            s.event_grid_key_event(
                data=s.key_vault_data(
                    vault_name=s.OTHER_VAULT_NAME, vault_url="https://kv-someone-else.vault.azure.net"
                )
            ),
            id="managed key name in another vault",
        ),
        pytest.param(
            s.vault_access_policy_changed(
                vault_name=s.OTHER_VAULT_NAME, vault_url="https://kv-someone-else.vault.azure.net/"
            ),
            id="access policy of another vault",
        ),
        pytest.param(s.role_assignment_event(s.OTHER_VAULT_RESOURCE_ID), id="assignment on another vault"),
        pytest.param(s.role_assignment_event(s.key_arm_id("payments-key")), id="assignment on an unmanaged key"),
        pytest.param(
            s.role_assignment_event(f"{s.SUBSCRIPTION_ID}/resourceGroups/rg-other", "delete"),
            id="assignment on another resource group",
        ),
        pytest.param(
            s.role_assignment_event("/subscriptions/11111111-2222-3333-4444-555555555555"),
            id="assignment on another subscription",
        ),
    ],
)
def test_outside_inventory(event):
    rejection = rejected(event, RejectReason.OUTSIDE_INVENTORY)
    assert rejection.event_id == event["id"]


# --- vault access policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param({"Id"}, id="by Id host"),
        pytest.param({"VaultName"}, id="by VaultName"),
        pytest.param(set(), id="by topic"),
    ],
)
def test_vault_access_policy_changed_identifies_the_vault(keep):
    event = s.vault_access_policy_changed()
    event["data"] = {k: v for k, v in event["data"].items() if k in keep}

    item = only(event)

    assert isinstance(item, VaultAccessPolicyChanged)
    assert (item.vault, item.vault_name, item.event_type) == (
        VAULT,
        s.VAULT_NAME,
        "Microsoft.KeyVault.VaultAccessPolicyChanged",
    )


# --- role assignments ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["write", "delete"])
@pytest.mark.parametrize(
    ("scope", "keys"),
    [
        pytest.param(s.key_arm_id(s.MYSQL_KEY), {MYSQL}, id="key scope"),
        pytest.param(s.VAULT_RESOURCE_ID, {AKS, MYSQL}, id="vault scope"),
        pytest.param(s.RESOURCE_GROUP_ID, {AKS, MYSQL}, id="resource group scope"),
        pytest.param(s.SUBSCRIPTION_ID, {AKS, MYSQL}, id="subscription scope"),
        pytest.param(s.RESOURCE_GROUP_ID.upper(), {AKS, MYSQL}, id="scope in other casing"),
        pytest.param("/", {AKS, MYSQL}, id="root scope"),
    ],
)
def test_role_assignment_changes_in_scope(operation, scope, keys):
    item = only(s.role_assignment_event(scope, operation))

    assert isinstance(item, RoleAssignmentChanged)
    assert item.operation == operation
    assert item.event_type == f"Microsoft.Resources.Resource{operation.title()}Success"
    assert item.scope == scope
    assert item.assignment_id == s.assignment_id(scope)
    assert set(item.affected_keys) == keys
    assert item.topic == s.RESOURCE_GROUP_ID


def test_role_assignment_in_cloud_events_with_subject_only_and_odd_casing():
    event = s.role_assignment_event(s.VAULT_RESOURCE_ID, "delete")
    data = event.pop("data")
    del data["resourceUri"]
    data["OperationName"] = data.pop("operationName").upper()
    cloud = {
        "id": event["id"],
        "source": event["topic"],
        "subject": event["subject"].replace(
            "/providers/Microsoft.Authorization/", "/providers/microsoft.authorization/"
        ),
        "type": "MICROSOFT.RESOURCES.RESOURCEDELETESUCCESS",
        "time": event["eventTime"],
        "specversion": "1.0",
        "data": data,
    }

    item = only(cloud)

    assert isinstance(item, RoleAssignmentChanged)
    assert (item.operation, item.scope, item.schema) == ("delete", s.VAULT_RESOURCE_ID, "CloudEvents")
    assert item.event_type == "Microsoft.Resources.ResourceDeleteSuccess"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            s.arm_event(resource_uri=s.VAULT_RESOURCE_ID, operation_name="Microsoft.KeyVault/vaults/write"),
            id="vault write",
        ),
        pytest.param(
            s.arm_event(
                resource_uri=f"{s.RESOURCE_GROUP_ID}/providers/Microsoft.Compute/disks/d1",
                operation_name="Microsoft.Compute/disks/delete",
                event_type="Microsoft.Resources.ResourceDeleteSuccess",
            ),
            id="disk delete",
        ),
        pytest.param(
            {**s.role_assignment_event(s.VAULT_RESOURCE_ID), "eventType": "Microsoft.Resources.ResourceWriteFailure"},
            id="write failure",
        ),
        pytest.param(
            {
                **s.role_assignment_event(s.VAULT_RESOURCE_ID, "delete"),
                "eventType": "Microsoft.Resources.ResourceDeleteCancel",
            },
            id="delete cancel",
        ),
        pytest.param(
            {**s.role_assignment_event(s.VAULT_RESOURCE_ID), "eventType": "Microsoft.Resources.ResourceActionSuccess"},
            id="action success",
        ),
    ],
)
def test_other_arm_operations_are_not_ours(event):
    rejected(event, RejectReason.NOT_OURS)


# --- subscription validation --------------------------------------------------------------------------------------


def test_subscription_validation_exposes_the_code():
    item = only([s.subscription_validation("CODE-123")])

    assert isinstance(item, SubscriptionValidation)
    assert item.validation_code == "CODE-123"
    assert item.validation_url.startswith("https://rp-eastus2.eventgrid.azure.net")
    assert item.event_type == "Microsoft.EventGrid.SubscriptionValidationEvent"


# --- malformed input names the field ------------------------------------------------------------------------------


def _without(event: dict, *path: str) -> dict:
    target = event
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return event


def _with(event: dict, value: Any, *path: str) -> dict:
    target = event
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return event


MALFORMED_CASES: list[tuple[Any, str]] = [
    (b"{not json", "body"),
    (b"\xff\xfe\x00garbage", "body"),
    ("", "body"),
    ("42", "body"),
    ("null", "body"),
    ("[" * 100_000, "body"),
    (_without(s.event_grid_key_event(), "id"), "id"),
    (_with(s.event_grid_key_event(), 7, "id"), "id"),
    (_with(s.event_grid_key_event(), "   ", "id"), "id"),
    ({**s.event_grid_key_event(), "Id": "another"}, "id"),
    (_without(s.event_grid_key_event(), "eventType"), "eventType"),
    (_with(s.event_grid_key_event(), ["Microsoft.KeyVault.KeyExpired"], "eventType"), "eventType"),
    (_without(s.cloud_event_key_event(), "type"), "type"),
    (_with(s.event_grid_key_event(), "yesterday", "eventTime"), "eventTime"),
    (_with(s.cloud_event_key_event(), {"at": 1}, "time"), "time"),
    (_with(s.event_grid_key_event(), 5, "topic"), "topic"),
    (_without(s.event_grid_key_event(), "data"), "data"),
    (_with(s.event_grid_key_event(), [1, 2], "data"), "data"),
    (_with(s.event_grid_key_event(), "{broken", "data"), "data"),
    (_with(s.event_grid_key_event(), "not a url at all", "data", "Id"), "data.Id"),
    (_with(s.event_grid_key_event(), "https://[::1/keys/k/v", "data", "Id"), "data.Id"),
    (_with(s.event_grid_key_event(), f"{s.VAULT_URL}/secrets/{s.AKS_KEY}/{s.VERSION}", "data", "Id"), "data.Id"),
    (_with(s.event_grid_key_event(), {"url": s.VAULT_URL}, "data", "Id"), "data.Id"),
    (_with(s.event_grid_key_event(), "Secret", "data", "ObjectType"), "data.ObjectType"),
    (_with(s.event_grid_key_event(), s.MYSQL_KEY, "data", "ObjectName"), "data.ObjectName"),
    (_with(s.event_grid_key_event(), "0123abcd", "data", "Version"), "data.Version"),
    (_with(s.event_grid_key_event(), "soon", "data", "NBF"), "data.NBF"),
    (_with(s.event_grid_key_event(), True, "data", "EXP"), "data.EXP"),
    (_with(s.event_grid_key_event(), 1e300, "data", "EXP"), "data.EXP"),
    (_with(s.event_grid_key_event(), "NaN", "data", "EXP"), "data.EXP"),
    (_with(s.event_grid_key_event(), 10**400, "data", "EXP"), "data.EXP"),
    (_with(s.event_grid_key_event(), {"ObjectName": s.AKS_KEY}, "data"), "data.Version"),
    (_with(s.event_grid_key_event(), {"Version": s.VERSION}, "data") | {"subject": None}, "data.ObjectName"),
    (_with(s.event_grid_key_event(), {"ObjectName": "k", "Version": "v"}, "data") | {"topic": None}, "data.Id"),
    (_without(s.role_assignment_event(s.VAULT_RESOURCE_ID), "data", "operationName"), "data.operationName"),
    (
        _with(s.role_assignment_event(s.VAULT_RESOURCE_ID), s.VAULT_RESOURCE_ID, "data", "resourceUri"),
        "data.resourceUri",
    ),
    (
        _with(
            s.role_assignment_event(s.VAULT_RESOURCE_ID),
            "Microsoft.Authorization/roleAssignments/delete",
            "data",
            "operationName",
        ),
        "data.operationName",
    ),
    (_without(s.subscription_validation(), "data", "validationCode"), "data.validationCode"),
    ([s.event_grid_key_event(), 42], "body[1]"),
    ([s.event_grid_key_event(), "text"], "body[1]"),
]


@pytest.mark.parametrize(
    ("body", "field"), [pytest.param(b, f, id=f"{f}#{i}") for i, (b, f) in enumerate(MALFORMED_CASES)]
)
def test_malformed_input_names_the_field(body, field):
    rejections = [r for r in parse_delivery(body, SCOPE) if isinstance(r, Rejection)]

    assert len(rejections) == 1, rejections
    assert rejections[0].reason is RejectReason.MALFORMED
    assert rejections[0].message.startswith(f"{field}:") or f" {field}:" in rejections[0].message, rejections[0]


# --- deliveries ---------------------------------------------------------------------------------------------------


def test_mixed_array_keeps_order_and_parses_each_element_on_its_own():
    body = json.dumps(
        [
            s.event_grid_key_event("Microsoft.KeyVault.KeyNearExpiry"),
            s.cloud_event_key_event("Microsoft.KeyVault.KeyExpired", name=s.MYSQL_KEY),
            s.event_grid_key_event("Microsoft.KeyVault.SecretNewVersionCreated"),
            s.role_assignment_event(s.RESOURCE_GROUP_ID),
            ["nested"],
            s.vault_access_policy_changed(),
        ]
    ).encode()

    results = parse_delivery(body, SCOPE)

    assert [type(r) for r in results] == [
        KeyNearExpiry,
        KeyExpired,
        Rejection,
        RoleAssignmentChanged,
        Rejection,
        VaultAccessPolicyChanged,
    ]
    assert [r.reason for r in results if isinstance(r, Rejection)] == [RejectReason.NOT_OURS, RejectReason.MALFORMED]
    assert results[2].message.startswith("body[2]: ")
    assert (results[0].schema, results[1].schema) == ("EventGrid", "CloudEvents")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(s.event_grid_key_event()),
        json.dumps([s.event_grid_key_event()]).encode(),
        b"\xef\xbb\xbf" + json.dumps(s.event_grid_key_event()).encode(),  # UTF-8 BOM
        bytearray(json.dumps(s.event_grid_key_event()).encode()),
        s.event_grid_key_event(),
        [s.event_grid_key_event()],
    ],
    ids=["text", "bytes array", "bom", "bytearray", "decoded object", "decoded array"],
)
def test_body_forms(body):
    assert isinstance(only(body), KeyNewVersionCreated)


@pytest.mark.parametrize("body", [b"[]", "[ ]", []])
def test_empty_array_gives_no_events(body):
    assert parse_delivery(body, SCOPE) == []


def test_data_as_json_string_and_cloud_events_data_base64():
    as_string = s.event_grid_key_event()
    as_string["data"] = json.dumps(as_string["data"])
    as_base64 = s.cloud_event_key_event()
    as_base64["data_base64"] = base64.b64encode(json.dumps(as_base64.pop("data")).encode()).decode()

    assert only(as_string) == only(s.event_grid_key_event())
    assert isinstance(only(as_base64), KeyNewVersionCreated)


def test_parse_event_takes_one_object():
    assert isinstance(parse_event(s.event_grid_key_event(), SCOPE), KeyNewVersionCreated)
    rejection = parse_event([s.event_grid_key_event()], SCOPE)
    assert isinstance(rejection, Rejection) and rejection.message.startswith("event:")


def test_typed_events_are_hashable_and_frozen():
    item = only(s.role_assignment_event(s.VAULT_RESOURCE_ID))
    key_event = only(s.event_grid_key_event())
    assert len({item, key_event, only(s.event_grid_key_event())}) == 2
    with pytest.raises(AttributeError):
        key_event.version = "other"  # type: ignore[misc]


# --- describe -----------------------------------------------------------------------------------------------------


def test_describe_is_one_safe_line():
    key_line = describe(only(s.event_grid_key_event("Microsoft.KeyVault.KeyNearExpiry")))
    assert "KeyNearExpiry" in key_line and s.AKS_KEY in key_line and s.VERSION in key_line

    role_line = describe(only(s.role_assignment_event(s.VAULT_RESOURCE_ID, "delete")))
    assert "delete" in role_line and s.MYSQL_KEY in role_line and s.AKS_KEY in role_line

    hostile = s.event_grid_key_event("Evil\nFAKE LOG LINE\r\x1b[31m")
    hostile["id"] = "x\n" * 1000
    line = describe(only(hostile))
    assert "unknown_type" in line
    assert not any(ch in line for ch in "\n\r\x1b")
    assert len(line) < 1000


# --- property-based: never raises --------------------------------------------------------------------------------

ENVELOPE_NAMES = [
    "id",
    "eventType",
    "type",
    "specversion",
    "subject",
    "topic",
    "source",
    "eventTime",
    "time",
    "data",
    "data_base64",
]
DATA_NAMES = [
    "Id",
    "VaultName",
    "ObjectType",
    "ObjectName",
    "Version",
    "NBF",
    "EXP",
    "operationName",
    "resourceUri",
    "validationCode",
]
TYPES = [
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.KeyExpired",
    "Microsoft.KeyVault.VaultAccessPolicyChanged",
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.EventGrid.SubscriptionValidationEvent",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*TYPES, s.VAULT_URL, f"{s.VAULT_URL}/keys/{s.AKS_KEY}/{s.VERSION}", s.VAULT_RESOURCE_ID])
)
names = st.sampled_from(ENVELOPE_NAMES + DATA_NAMES) | st.text(max_size=8)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=6), max_leaves=25
)
envelope_like = st.fixed_dictionaries(
    {"id": st.uuids().map(str) | scalars, "eventType": st.sampled_from(TYPES) | scalars},
    optional={
        "specversion": scalars,
        "type": st.sampled_from(TYPES) | scalars,
        "topic": scalars,
        "subject": scalars,
        "eventTime": scalars,
        "data": st.dictionaries(st.sampled_from(DATA_NAMES), scalars, max_size=8) | json_values,
    },
)
whitespace = st.text(alphabet=" \t\r\n\u00a0", min_size=1, max_size=3)


def _recase(text: str, flips: list[bool]) -> str:
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips + [False] * len(text), strict=False))


VALID = [
    s.event_grid_key_event,
    s.cloud_event_key_event,
    s.published_sample_quirks,
    s.older_camel_case_key_event,
    s.vault_access_policy_changed,
    lambda: s.role_assignment_event(s.VAULT_RESOURCE_ID),
    lambda: s.role_assignment_event(s.RESOURCE_GROUP_ID, "delete"),
    s.subscription_validation,
]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict:
    """A valid event with fields dropped, retyped, recased and whitespace-padded, in the envelope and in data."""
    event = draw(st.sampled_from(VALID))()
    for _ in range(draw(st.integers(1, 5))):
        target = event
        if isinstance(event.get("data"), dict) and draw(st.booleans()):
            target = event["data"]
        if not target:
            continue
        name = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "retype", "recase", "pad name", "pad value"]))
        if action == "drop":
            del target[name]
        elif action == "retype":
            target[name] = draw(json_values)
        elif action == "recase":
            target[_recase(name, draw(st.lists(st.booleans())))] = target.pop(name)
        elif action == "pad name":
            target[draw(whitespace) + name + draw(whitespace)] = target.pop(name)
        elif isinstance(target[name], str):
            target[name] = draw(whitespace) + target[name] + draw(whitespace)
    return event


def _assert_well_formed_result(body: Any, results: Any) -> None:
    assert isinstance(results, list)
    if isinstance(body, list):
        assert len(results) == len(body)
    for item in results:
        assert isinstance(item, ParsedEvent | Rejection)
        assert isinstance(item, (*TYPED, Rejection))
        event(type(item).__name__ if not isinstance(item, Rejection) else f"Rejection {item.reason.value}")
        line = describe(item)
        assert "\n" not in line and "\r" not in line
        if isinstance(item, Rejection):
            assert isinstance(item.message, str) and item.message
        else:
            assert isinstance(item.event_id, str) and item.event_id


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.lists(json_values, max_size=3), st.binary(max_size=64), envelope_like))
def test_never_raises_on_arbitrary_json_or_bytes(body):
    _assert_well_formed_result(body, parse_delivery(body, SCOPE))
    if not isinstance(body, bytes):
        _assert_well_formed_result(body, parse_delivery(json.dumps(body), SCOPE))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_events(), min_size=1, max_size=3))
def test_never_raises_on_mutated_valid_events(events):
    _assert_well_formed_result(events, parse_delivery(events, SCOPE))
    _assert_well_formed_result(events, parse_delivery(json.dumps(events).encode(), SCOPE))


@st.composite
def cosmetic_variants(draw: st.DrawFn) -> tuple[dict, dict]:
    """A valid event and a copy that differs only in name casing, whitespace and event-type casing."""
    original = draw(st.sampled_from(VALID))()
    variant = copy.deepcopy(original)

    def disguise(obj: dict) -> dict:
        out = {}
        for name, value in obj.items():
            new_name = _recase(name, draw(st.lists(st.booleans(), max_size=len(name))))
            if draw(st.booleans()):
                new_name = draw(whitespace) + new_name + draw(whitespace)
            if isinstance(value, str) and draw(st.booleans()):
                value = draw(whitespace) + value + draw(whitespace)
            if name in ("eventType", "type") and isinstance(value, str):
                value = _recase(value, draw(st.lists(st.booleans(), max_size=len(value))))
            out[new_name] = disguise(value) if isinstance(value, dict) and name == "data" else value
        return out

    return original, disguise(variant)


@settings(max_examples=300, deadline=None)
@given(cosmetic_variants())
def test_casing_and_whitespace_never_change_the_result(pair):
    original, variant = pair
    expected = parse_delivery(original, SCOPE)
    assert not any(isinstance(r, Rejection) for r in expected), expected

    assert parse_delivery(variant, SCOPE) == expected
