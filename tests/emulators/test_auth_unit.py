"""Bearer tokens from EmulatorCredential as the emulators read them, and data-action matching (no process)."""

from __future__ import annotations

import time

import pytest

from emulators.auth import InvalidToken, action_matches, challenge_header, is_permitted, read_bearer
from emulators.credential import DEFAULT_TENANT_ID, EmulatorCredential, make_token

PRINCIPAL = "3f0b6a52-0c1d-4e2f-9a8b-7c6d5e4f3a21"
VAULT = "https://vault.azure.net"


def test_credential_token_names_the_principal() -> None:
    credential = EmulatorCredential(PRINCIPAL)
    token = credential.get_token(f"{VAULT}/.default")
    caller = read_bearer(f"Bearer {token.token}", tenant_id=DEFAULT_TENANT_ID, audience=VAULT)
    assert caller is not None and caller.principal_id == PRINCIPAL
    assert token.expires_on > time.time() + 3000


def test_token_info_follows_the_challenge_tenant() -> None:
    info = EmulatorCredential(PRINCIPAL).get_token_info(f"{VAULT}/.default", options={"tenant_id": "other-tenant"})
    assert info.token_type == "Bearer"
    assert read_bearer(f"Bearer {info.token}", tenant_id="other-tenant", audience=VAULT) is not None


def test_credential_refuses_a_principal_that_is_not_a_guid() -> None:
    with pytest.raises(ValueError, match="principal_id"):
        EmulatorCredential("alice")


def test_missing_header_means_challenge() -> None:
    assert read_bearer(None, tenant_id=DEFAULT_TENANT_ID, audience=VAULT) is None
    assert (
        challenge_header("t-1")
        == 'Bearer authorization="https://login.microsoftonline.com/t-1", resource="https://vault.azure.net"'
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic abc", "not a Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
        ("Bearer a.%%%.c", "not a JWT"),
        (f"Bearer {make_token(PRINCIPAL, DEFAULT_TENANT_ID, VAULT, now=time.time() - 7200)[0]}", "expired"),
        (f"Bearer {make_token(PRINCIPAL, 'another', VAULT)[0]}", "another tenant"),
        (f"Bearer {make_token(PRINCIPAL, DEFAULT_TENANT_ID, 'https://management.azure.com')[0]}", "audience"),
    ],
)
def test_unusable_tokens_are_refused_with_a_reason(header: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        read_bearer(header, tenant_id=DEFAULT_TENANT_ID, audience=VAULT)


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults/keys/unwrap/action", True),
        ("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keys/unwrap/action", True),
        ("microsoft.keyvault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/read", True),
        ("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/read", False),
        ("Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action", False),
    ],
)
def test_action_patterns(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(action, pattern) is expected


def test_not_data_actions_exclude() -> None:
    granted = {"Microsoft.KeyVault/vaults/keys/*"}
    denied = {"Microsoft.KeyVault/vaults/keys/unwrap/action"}
    assert is_permitted("Microsoft.KeyVault/vaults/keys/wrap/action", granted, denied)
    assert not is_permitted("Microsoft.KeyVault/vaults/keys/unwrap/action", granted, denied)
    assert not is_permitted("Microsoft.KeyVault/vaults/keys/read", set())


@pytest.mark.parametrize(
    ("remote", "allowed"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("10.0.0.5", False), ("", False), (None, False)],
)
def test_admin_api_answers_loopback_callers_only(remote: str | None, allowed: bool) -> None:
    from emulators.admin import is_loopback

    assert is_loopback(remote) is allowed
