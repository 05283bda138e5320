"""A bug in code the adapter runs (here: a credential that breaks) surfaces as itself through the unchanged SDK.

Before, the adapter turned any exception into CmkError, which the compliance report shows as `KeyUnreadable` on a
healthy key: an operator would go looking at the vault for a fault that is in the app."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import CmkError
from shared.model import KeyRef


class BrokenCredential:
    """A TokenCredential whose token code has a programming error."""

    def get_token(self, *scopes, **kwargs):
        raise TypeError("token cache: unsupported operand type(s)")

    def get_token_info(self, *scopes, options=None):
        raise TypeError("token cache: unsupported operand type(s)")

    def close(self) -> None:
        pass


def test_a_programming_error_under_the_adapter_is_not_a_vault_error(cloud_with_app_identity):
    from shared.azure.keyvault import AzureKeyVault

    cloud = cloud_with_app_identity
    vault = AzureKeyVault(
        BrokenCredential(), connection_verify=cloud.emulators.ca_cert, verify_challenge_resource=False
    )
    try:
        with pytest.raises(TypeError, match="token cache") as raised:
            vault.get_key(KeyRef(cloud.vault_url, f"bug-{uuid.uuid4().hex[:8]}"))
        assert not isinstance(raised.value, CmkError)
    finally:
        vault.close()


def test_an_sdk_error_from_the_same_call_is_still_translated(cloud_with_app_identity):
    """The control: with a working credential, the same call on a missing key is the project's KeyNotFound."""
    from shared.errors import KeyNotFound

    cloud = cloud_with_app_identity
    vault = cloud.app_keyvault()
    try:
        with pytest.raises(KeyNotFound):
            vault.get_key(KeyRef(cloud.vault_url, f"missing-{uuid.uuid4().hex[:8]}"))
    finally:
        vault.close()
