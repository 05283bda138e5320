"""Who may press the revocation buttons: a signed-in operator, by object id (and tenant), behind App Service
authentication or in the local run; the function key alone only where a setting says so. Names are labels for the
audit trail, never credentials; anything not explicitly configured is refused."""

from __future__ import annotations

import base64
import json

import pytest

from shared.errors import InvalidSetting
from shared.http.callers import FUNCTION_KEY_CALLER, CallerPolicy, identify

OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID = "http://schemas.microsoft.com/identity/claims/tenantid"
ALICE = "0f2b8c1d-4a5e-4f6a-8b7c-9d0e1f2a3b4c"
MALLORY = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
TENANT = "11111111-2222-4333-8444-555555555555"
OTHER_TENANT = "99999999-2222-4333-8444-555555555555"
AZURE = {"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "true"}
LOCAL = {"CMK_LOCAL_RUN": "true", "CMK_ARM_ENDPOINT": "https://127.0.0.1:8443"}


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


def test_in_the_local_run_the_function_key_alone_is_enough_and_recorded_as_such():
    caller = identify({}, _policy(**LOCAL))
    assert caller.allowed and caller.name == FUNCTION_KEY_CALLER


def test_without_any_setting_the_function_key_alone_is_refused_wherever_the_app_runs():
    """M3: a host without WEBSITE_INSTANCE_ID (a container, AKS) is not the local run: closed by default."""
    refused = identify({}, _policy(CMK_OPERATORS=ALICE))
    assert not refused.allowed and "CMK_ALLOW_FUNCTION_KEY_ONLY" in refused.why


def test_without_easy_auth_or_the_local_run_a_principal_header_counts_for_nothing():
    """M3: outside Azure a client wrote the header; before, it was trusted and the caller allowed as alice."""
    forged = {"X-MS-CLIENT-PRINCIPAL": _principal(**{OID: ALICE}), "X-MS-CLIENT-PRINCIPAL-NAME": "alice@contoso.com"}
    caller = identify(forged, _policy(CMK_OPERATORS=ALICE))
    assert not caller.allowed and caller.name == FUNCTION_KEY_CALLER


def test_in_azure_without_a_signed_in_caller_the_function_key_alone_is_refused_unless_allowed():
    refused = identify({}, _policy(**AZURE))
    assert not refused.allowed and "CMK_ALLOW_FUNCTION_KEY_ONLY" in refused.why
    assert identify({}, _policy(**AZURE, CMK_ALLOW_FUNCTION_KEY_ONLY="true")).allowed


def test_a_signed_in_operator_is_allowed_by_object_id_and_recorded_by_name_and_id():
    header = _principal(**{OID: ALICE, "preferred_username": "alice@contoso.example"})
    policy = _policy(**AZURE, CMK_OPERATORS=f"{ALICE.upper()}, {MALLORY}")
    caller = identify({"x-ms-client-principal": header}, policy)
    assert caller.allowed and caller.name == f"alice@contoso.example ({ALICE})"


def test_a_name_claim_that_spells_an_operator_is_no_credential():
    """H1: Mallory's guest account carries alice's name (or even alice's object id) as its display name."""
    for name in ("alice@contoso.com", ALICE):
        header = _principal(**{OID: MALLORY, "name": name, "preferred_username": name})
        caller = identify(
            {"X-MS-CLIENT-PRINCIPAL": header, "X-MS-CLIENT-PRINCIPAL-NAME": name}, _policy(**AZURE, CMK_OPERATORS=ALICE)
        )
        assert not caller.allowed and MALLORY in caller.name


def test_operators_must_be_object_ids_and_a_name_there_is_refused_at_start():
    """H1: `CMK_OPERATORS=alice@contoso.com` used to authorize anyone whose display name was that."""
    with pytest.raises(InvalidSetting) as refused:
        _policy(**AZURE, CMK_OPERATORS=f"{ALICE}, alice@contoso.com")
    assert refused.value.field == "CMK_OPERATORS" and "alice@contoso.com" in refused.value.reason


def test_with_a_tenant_configured_an_operator_from_another_tenant_or_none_is_refused():
    policy = _policy(**AZURE, CMK_OPERATORS=ALICE, CMK_TENANT_ID=TENANT)
    assert identify({"X-MS-CLIENT-PRINCIPAL": _principal(**{OID: ALICE, TID: TENANT})}, policy).allowed
    other = identify({"X-MS-CLIENT-PRINCIPAL": _principal(**{OID: ALICE, TID: OTHER_TENANT})}, policy)
    assert not other.allowed and "tenant" in other.why
    unknown = identify({"X-MS-CLIENT-PRINCIPAL-ID": ALICE}, policy)
    assert not unknown.allowed and "tenant" in unknown.why
    with pytest.raises(InvalidSetting) as refused:
        _policy(CMK_TENANT_ID="contoso")
    assert refused.value.field == "CMK_TENANT_ID"


def test_the_local_run_setting_is_accepted_only_against_loopback_endpoints_and_outside_azure():
    for env in (
        {"CMK_LOCAL_RUN": "true"},
        {"CMK_LOCAL_RUN": "true", "CMK_ARM_ENDPOINT": "https://management.azure.com"},
        {**LOCAL, "WEBSITE_INSTANCE_ID": "abc"},
    ):
        with pytest.raises(InvalidSetting) as refused:
            _policy(**env)
        assert refused.value.field == "CMK_LOCAL_RUN"
    with pytest.raises(InvalidSetting):
        _policy(CMK_LOCAL_RUN="yes")


@pytest.mark.parametrize(
    ("headers", "env", "why"),
    [
        ({"X-MS-CLIENT-PRINCIPAL": _principal(oid=MALLORY)}, {"CMK_OPERATORS": ALICE}, "not in CMK_OPERATORS"),
        ({"X-MS-CLIENT-PRINCIPAL": _principal(oid=ALICE)}, {}, "lists no operator"),
        ({"X-MS-CLIENT-PRINCIPAL": "%%% not base64 json"}, {"CMK_OPERATORS": ALICE}, "not a readable principal"),
        ({"X-MS-CLIENT-PRINCIPAL-NAME": "mallory"}, {"CMK_OPERATORS": ALICE}, "no object id"),
        ({"X-MS-CLIENT-PRINCIPAL": _principal(oid="not-a-guid")}, {"CMK_OPERATORS": ALICE}, "no object id"),
    ],
)
def test_a_signed_in_caller_outside_the_operators_is_refused(headers, env, why):
    caller = identify(headers, _policy(**LOCAL, **env))
    assert not caller.allowed and why in caller.why


def test_a_caller_name_is_escaped_before_it_reaches_records_and_logs():
    header = _principal(preferred_username="eve\nFAKE LOG LINE", oid=MALLORY)
    caller = identify({"X-MS-CLIENT-PRINCIPAL": header}, _policy(**LOCAL, CMK_OPERATORS=ALICE))
    assert "\n" not in caller.name and not caller.allowed


def test_a_bad_setting_is_named():
    with pytest.raises(InvalidSetting) as refused:
        _policy(CMK_ALLOW_FUNCTION_KEY_ONLY="yes")
    assert refused.value.field == "CMK_ALLOW_FUNCTION_KEY_ONLY"


def test_the_status_page_where_the_host_checked_the_key_is_for_anyone_holding_it():
    from shared.http.callers import status_viewer

    assert status_viewer({}, _policy(**AZURE), key_checked=True).allowed
    header = _principal(**{OID: MALLORY, "preferred_username": "mallory@contoso.example"})
    viewer = status_viewer({"X-MS-CLIENT-PRINCIPAL": header}, _policy(**AZURE, CMK_OPERATORS=ALICE), key_checked=True)
    assert viewer.allowed and viewer.name == f"mallory@contoso.example ({MALLORY})"  # named, though no operator


def test_the_status_page_served_without_a_key_is_only_for_signed_in_operators():
    from shared.http.callers import status_viewer

    policy = _policy(**AZURE, CMK_OPERATORS=ALICE, CMK_ALLOW_FUNCTION_KEY_ONLY="true")
    nobody = status_viewer({}, policy, key_checked=False)
    assert not nobody.allowed and "signed-in operator" in nobody.why  # key-only is allowed elsewhere, not here
    alice = _principal(**{OID: ALICE, "preferred_username": "alice@contoso.example"})
    assert status_viewer({"X-MS-CLIENT-PRINCIPAL": alice}, policy, key_checked=False).allowed
    mallory = _principal(**{OID: MALLORY})
    assert not status_viewer({"X-MS-CLIENT-PRINCIPAL": mallory}, policy, key_checked=False).allowed


ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def _principal_with_roles(roles: list[str], role_type: str = "roles", **claims: str) -> str:
    document = {
        "auth_typ": "aad",
        "name_typ": "preferred_username",
        "role_typ": role_type,
        "claims": [{"typ": typ, "val": val} for typ, val in claims.items()]
        + [{"typ": role_type, "val": role} for role in roles],
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize("role_type", ["roles", ROLE])
def test_a_caller_with_the_operator_app_role_is_allowed_though_not_listed_by_object_id(role_type):
    header = _principal_with_roles(["Reader", "CmkGuardian.Operator"], role_type, **{OID: MALLORY})
    caller = identify({"X-MS-CLIENT-PRINCIPAL": header}, _policy(**AZURE))
    assert caller.allowed and MALLORY in caller.name


def test_the_operator_role_is_a_setting_and_only_that_role_counts():
    header = _principal_with_roles(["CmkGuardian.Operator"], **{OID: MALLORY})
    renamed = _policy(**AZURE, CMK_OPERATOR_ROLE="Contoso.KeyCustodian")
    refused = identify({"X-MS-CLIENT-PRINCIPAL": header}, renamed)
    assert not refused.allowed and "Contoso.KeyCustodian" in refused.why
    custodian = _principal_with_roles(["Contoso.KeyCustodian"], **{OID: MALLORY})
    assert identify({"X-MS-CLIENT-PRINCIPAL": custodian}, renamed).allowed
    with pytest.raises(InvalidSetting) as bad:
        _policy(CMK_OPERATOR_ROLE="Key Custodian")
    assert bad.value.field == "CMK_OPERATOR_ROLE"


def test_a_name_or_username_that_spells_the_role_or_an_operator_is_no_credential():
    """H1: only role claims carry roles; `name`, `preferred_username` and e-mail are labels whatever they say."""
    for name in ("CmkGuardian.Operator", ALICE, "alice@contoso.com"):
        claims = {OID: MALLORY, "name": name, "preferred_username": name, "email": name}
        header = _principal_with_roles(["Reader"], **claims)
        caller = identify({"X-MS-CLIENT-PRINCIPAL": header}, _policy(**AZURE, CMK_OPERATORS=ALICE))
        assert not caller.allowed and "CmkGuardian.Operator" in caller.why


def test_a_role_holder_still_needs_an_object_id_and_the_configured_tenant():
    no_oid = _principal_with_roles(["CmkGuardian.Operator"], preferred_username="svc")
    assert not identify({"X-MS-CLIENT-PRINCIPAL": no_oid}, _policy(**AZURE)).allowed
    elsewhere = _principal_with_roles(["CmkGuardian.Operator"], **{OID: MALLORY, TID: OTHER_TENANT})
    caller = identify({"X-MS-CLIENT-PRINCIPAL": elsewhere}, _policy(**AZURE, CMK_TENANT_ID=TENANT))
    assert not caller.allowed and "tenant" in caller.why


def test_without_easy_auth_a_role_in_a_header_counts_for_nothing():
    """M3: outside App Service authentication (and the local run) the header is the client's own writing."""
    forged = _principal_with_roles(["CmkGuardian.Operator"], **{OID: MALLORY})
    caller = identify({"X-MS-CLIENT-PRINCIPAL": forged}, _policy(WEBSITE_INSTANCE_ID="abc"))
    assert not caller.allowed and caller.name == FUNCTION_KEY_CALLER
