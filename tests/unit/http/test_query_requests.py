"""The query strings of the routes operators read: the audit trail's action and outcome filters, the alert list's state
and limit, one key's name; each refusal names its parameter."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from shared.http import AlertsQuery, parse_alerts_request, parse_audit_request, parse_key_name, parse_query


def test_the_audit_trail_takes_action_and_outcome():
    query = parse_audit_request("https://app/api/audit?action=revocation&outcome=executed&key=aks-encryption-key")
    assert (query.action, query.outcome, query.key) == ("revocation", "executed", "aks-encryption-key")
    assert parse_audit_request("https://app/api/audit").action is None


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("https://app/api/audit?action=Revocation", "action"),
        ("https://app/api/audit?action=", "action"),
        ("https://app/api/audit?outcome=a%20b", "outcome"),
        ("https://app/api/audit?action=x&action=y", "action"),
        ("https://app/api/alerts?state=lost", "state"),
        ("https://app/api/alerts?limit=0", "limit"),
        ("https://app/api/alerts?limit=201", "limit"),
        ("https://app/api/alerts?key=x", "key"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(url, field):
    parse = parse_audit_request if "/audit" in url else parse_alerts_request
    with pytest.raises(InvalidInput) as caught:
        parse(url)
    assert caught.value.field == field


def test_the_alert_list_takes_a_state_and_a_limit():
    assert parse_alerts_request("https://app/api/alerts?state=failed&limit=5") == AlertsQuery("failed", 5)
    assert parse_alerts_request("https://app/api/alerts?code=functionkey") == AlertsQuery(None, 50)


def test_a_route_without_parameters_takes_only_the_hosts_code():
    assert parse_query("https://app/api/keys?code=k") == {}
    with pytest.raises(InvalidInput) as caught:
        parse_query("https://app/api/keys?key=aks-encryption-key")
    assert caught.value.field == "key" and "takes no query parameters" in caught.value.reason


@pytest.mark.parametrize("name", ["", "a b", "x" * 128, "vault/../key", "<b>"])
def test_a_key_name_in_the_path_that_key_vault_would_refuse_is_400_naming_it(name):
    with pytest.raises(InvalidInput) as caught:
        parse_key_name(name)
    assert caught.value.field == "name"


def test_a_refusal_can_say_where_to_go_instead():
    with pytest.raises(InvalidInput) as caught:
        parse_query("https://app/api/keys?key=aks-encryption-key", hint="one key is GET /api/keys/{name}")
    assert caught.value.field == "key"
    assert caught.value.reason.endswith("takes no query parameters; one key is GET /api/keys/{name}")
