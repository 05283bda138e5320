"""The pieces of the Table adapters that are pure: key escaping, the audit trail's sort key and continuation token,
the table-name settings and how the container builds the two table ports."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.azure.audit import decode_token, encode_token, row_key
from shared.azure.claims import TableClaims
from shared.azure.tables import MAX_KEY_CHARS, checked_key, escape_key, unescape_key
from shared.bootstrap import Container
from shared.errors import InvalidInput, InvalidSetting
from shared.settings import Settings
from tests.support.azurite import ACCOUNT_KEY, ACCOUNT_NAME

FORBIDDEN = "/\\#?" + "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)])


@pytest.mark.parametrize(
    "value",
    ["rotate|kv.vault.azure.net|key|v1", "a/b\\c#d?e", "100%", "%2F", "tab\there", "ünï\u0085code", "'quoted'"],
)
def test_escaping_round_trips_and_leaves_no_forbidden_character(value):
    key = escape_key(value)
    assert unescape_key(key) == value
    assert not set(key) & set(FORBIDDEN)


def test_escaping_keeps_readable_ids_as_they_are_and_never_merges_two():
    assert escape_key("rotate|kv-cmk-reference.vault.azure.net|mysql-encryption-key|abc") == (
        "rotate|kv-cmk-reference.vault.azure.net|mysql-encryption-key|abc"
    )
    assert escape_key("a/b") == "a%2Fb" and escape_key("a%2Fb") == "a%252Fb"
    assert len({escape_key(v) for v in ["a/b", "a%2Fb", "a%252Fb"]}) == 3


@pytest.mark.parametrize(("value", "why"), [("", "non-empty"), ("/" * (MAX_KEY_CHARS // 3 + 1), "too long")])
def test_ids_that_cannot_be_keys_are_refused_naming_the_field(value, why):
    with pytest.raises(InvalidInput) as err:
        checked_key("claim_id", value)
    assert err.value.field == "claim_id" and why in err.value.reason


def test_audit_row_keys_sort_newest_first_and_by_id_within_an_instant():
    t = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    rows = [
        row_key(t, "b"),
        row_key(t + timedelta(microseconds=1), "z"),
        row_key(t, "a"),
        row_key(t - timedelta(days=400), "a"),
        row_key(datetime(9999, 12, 31, tzinfo=UTC), "a"),
        row_key(datetime(1970, 1, 1, tzinfo=UTC), "a"),
    ]
    assert sorted(rows) == [rows[4], rows[1], rows[2], rows[0], rows[3], rows[5]]
    assert row_key(t.replace(tzinfo=None), "a") == rows[2]  # naive is UTC, as everywhere in the app
    with pytest.raises(InvalidInput) as err:
        row_key(datetime(1969, 12, 31, tzinfo=UTC), "a")
    assert err.value.field == "at"


def test_a_continuation_token_round_trips_and_is_opaque():
    start = row_key(datetime(2026, 12, 1, tzinfo=UTC), "0123abcd")
    token = encode_token(start)
    assert decode_token(token) == start
    assert start not in token and "=" not in token  # url-safe, no padding: fits a query string as it is


@pytest.mark.parametrize(
    "token",
    [
        "",
        "****",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 2, "start": "0" * 18 + "-a"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1, "start": "PartitionKey eq 'x'"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["v", 1]).encode()).decode(),
        "ü",
    ],
)
def test_a_token_not_issued_here_names_continuation(token):
    with pytest.raises(InvalidInput) as err:
        decode_token(token)
    assert err.value.field == "continuation"


def test_table_names_default_and_are_validated_naming_the_setting():
    s = Settings.from_env({})
    assert (s.claims_table, s.audit_table) == ("cmkclaims", "cmkaudit")
    assert Settings.from_env({"CMK_AUDIT_TABLE": "Audit2026"}).audit_table == "Audit2026"
    for setting in ("CMK_CLAIMS_TABLE", "CMK_AUDIT_TABLE"):
        for bad in ("ab", "1claims", "cmk-claims", "x" * 64, "tables"):
            with pytest.raises(InvalidSetting) as err:
                Settings.from_env({setting: bad})
            assert err.value.field == setting, bad


CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
    f"TableEndpoint=http://127.0.0.1:9/{ACCOUNT_NAME};"
)


def test_the_container_builds_each_table_port_once_on_the_configured_table():
    container = Container(Settings.from_env({"AzureWebJobsStorage": CONNECTION, "CMK_CLAIMS_TABLE": "claimsx"}))
    assert isinstance(container.claims, TableClaims) and container.claims is container.claims
    assert container.audit is container.audit
    assert container.claims._table.name == "claimsx" and container.audit._table.name == "cmkaudit"
    assert {"claims", "audit"} <= Container.ports()


def test_identity_based_storage_uses_the_table_service_uri():
    uri = "https://acct.table.core.windows.net"
    container = Container(Settings.from_env({"AzureWebJobsStorage__tableServiceUri": uri}))
    assert container.audit._table.client.url.startswith(uri)


def test_tables_without_storage_settings_name_azurewebjobsstorage():
    with pytest.raises(InvalidSetting) as err:
        _ = Container(Settings.from_env({})).claims
    assert err.value.field == "AzureWebJobsStorage"
