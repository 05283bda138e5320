from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.arm_ids import is_guid, last_segment, normalize_scope, role_definition_guid, scope_covers
from shared.timestamps import iso_utc

GUID = "e147488a-f6f5-4113-8e2d-b22465e65bf6"


def test_scopes_compare_case_insensitively_without_trailing_slash():
    assert normalize_scope(" /Subscriptions/ABC/ ") == "/subscriptions/abc"
    assert normalize_scope("/") == ""


@pytest.mark.parametrize(
    ("parent", "child", "covers"),
    [
        ("/", "/subscriptions/a/resourceGroups/rg", True),
        ("/subscriptions/A", "/subscriptions/a/resourceGroups/rg", True),
        (
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/keys/k",
            True,
        ),
        (
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv2/keys/k",
            False,
        ),
        (
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/keys/k",
            "/subscriptions/a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            False,
        ),
    ],
)
def test_scope_covers_on_segment_boundaries(parent, child, covers):
    assert scope_covers(parent, child) is covers


def test_role_definition_guid_from_any_form():
    assert role_definition_guid(GUID.upper()) == GUID
    assert role_definition_guid(f"/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{GUID}/") == GUID
    assert role_definition_guid(f"/providers/Microsoft.Authorization/roleDefinitions/{GUID}") == GUID
    with pytest.raises(ValueError, match="not a role definition"):
        role_definition_guid("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/owner")
    assert is_guid(GUID) and not is_guid("owner")
    assert last_segment("https://kv/keys/k/abc/") == "abc"


def test_iso_utc_is_z_suffixed_and_converts_offsets():
    assert iso_utc(None) is None
    assert iso_utc(datetime(2026, 12, 1, 22, 10, 3, tzinfo=UTC)) == "2026-12-01T22:10:03Z"
    assert iso_utc(datetime(2026, 12, 1, 23, 10, 3, tzinfo=timezone(timedelta(hours=1)))) == "2026-12-01T22:10:03Z"
    assert iso_utc(datetime(2026, 12, 1, 22, 10, 3)) == "2026-12-01T22:10:03Z"
