"""Who may press the revocation buttons: the signed-in caller behind App Service authentication, or the function key
alone where a setting allows it; a forged header outside Easy Auth in Azure counts for nothing."""

from __future__ import annotations

import base64
import json

import pytest

from shared.callers import FUNCTION_KEY_CALLER, CallerPolicy, identify
from shared.errors import InvalidSetting

OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ALICE = "0f2b8c1d-4a5e-4f6a-8b7c-9d0e1f2a3b4c"


def _principal(**claims: str) -> str:
    document = {
        "auth_typ": "aad",
        "name_typ": "preferred_username",
        "role_typ": "roles",
        "claims": [{"typ": typ, "val": val} for typ, val in claims.items()],
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def _policy(**env: str) -> CallerPolicy:
    return CallerPolicy.from_env(env)


def test_locally_the_function_key_alone_is_enough_and_recorded_as_such():
    caller = identify({}, _policy())
    assert caller.allowed and caller.name == FUNCTION_KEY_CALLER


def test_in_azure_without_a_signed_in_caller_the_function_key_alone_is_refused_unless_allowed():
    azure = {"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "true"}
    refused = identify({}, _policy(**azure))
    assert not refused.allowed and "CMK_ALLOW_FUNCTION_KEY_ONLY" in refused.why
    assert identify({}, _policy(**azure, CMK_ALLOW_FUNCTION_KEY_ONLY="true")).allowed


def test_a_signed_in_operator_is_allowed_by_object_id_and_named_by_their_user_name():
    header = _principal(**{OID: ALICE, "preferred_username": "alice@contoso.example"})
    policy = _policy(WEBSITE_INSTANCE_ID="abc", WEBSITE_AUTH_ENABLED="true", CMK_OPERATORS=f"{ALICE.upper()}, bob")
    caller = identify({"x-ms-client-principal": header}, policy)
    assert caller.allowed and caller.name == "alice@contoso.example"


@pytest.mark.parametrize(
    ("headers", "env", "why"),
    [
        ({"X-MS-CLIENT-PRINCIPAL": _principal(oid="someone-else")}, {"CMK_OPERATORS": ALICE}, "not in CMK_OPERATORS"),
        ({"X-MS-CLIENT-PRINCIPAL": _principal(oid=ALICE)}, {}, "lists no operator"),
        ({"X-MS-CLIENT-PRINCIPAL": "%%% not base64 json"}, {"CMK_OPERATORS": ALICE}, "not a readable principal"),
        ({"X-MS-CLIENT-PRINCIPAL-NAME": "mallory"}, {"CMK_OPERATORS": ALICE}, "not in CMK_OPERATORS"),
    ],
)
def test_a_signed_in_caller_outside_the_operators_is_refused(headers, env, why):
    caller = identify(headers, _policy(**env))
    assert not caller.allowed and why in caller.why


def test_in_azure_without_easy_auth_a_client_written_principal_header_is_ignored():
    forged = {"X-MS-CLIENT-PRINCIPAL": _principal(oid=ALICE)}
    policy = _policy(WEBSITE_INSTANCE_ID="abc", CMK_OPERATORS=ALICE)
    caller = identify(forged, policy)
    assert not caller.allowed and caller.name == FUNCTION_KEY_CALLER


def test_a_caller_name_is_escaped_before_it_reaches_records_and_logs():
    header = _principal(preferred_username="eve\nFAKE LOG LINE")
    caller = identify({"X-MS-CLIENT-PRINCIPAL": header}, _policy(CMK_OPERATORS="x"))
    assert "\n" not in caller.name and not caller.allowed


def test_a_bad_setting_is_named():
    with pytest.raises(InvalidSetting) as refused:
        _policy(CMK_ALLOW_FUNCTION_KEY_ONLY="yes")
    assert refused.value.field == "CMK_ALLOW_FUNCTION_KEY_ONLY"
