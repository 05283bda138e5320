"""The identity a consumer really uses, read from the resource ARM returns (shared.azure.consumers.state_from_arm)."""

from __future__ import annotations

from shared.azure.consumers import state_from_arm
from shared.model import ConsumerKind

RG = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg"
SERVER = f"{RG}/providers/Microsoft.DBforMySQL/flexibleServers/mysql-1"
DES = f"{RG}/providers/Microsoft.Compute/diskEncryptionSets/des-1"
UAMI_1 = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-one"
UAMI_2 = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-two"
P1, P2, SYSTEM = (
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
)
KEY = "https://kv.vault.azure.net/keys/k/" + "a" * 32


def _server(primary: str, *, assigned: dict, geo: str | None = None) -> dict:
    encryption = {"type": "AzureKeyVault", "primaryKeyURI": KEY, "primaryUserAssignedIdentityId": primary}
    if geo:
        encryption |= {"geoBackupUserAssignedIdentityId": geo, "geoBackupKeyURI": KEY}
    return {
        "identity": {"type": "SystemAssigned,UserAssigned", "principalId": SYSTEM, "userAssignedIdentities": assigned},
        "properties": {"dataEncryption": encryption, "state": "Ready"},
    }


def test_a_servers_identity_is_its_primary_user_assigned_one_never_its_system_assigned_one():
    document = _server(UAMI_2, assigned={UAMI_1: {"principalId": P1}, UAMI_2.upper(): {"principalId": P2.upper()}})
    state = state_from_arm(ConsumerKind.MYSQL_FLEXIBLE_SERVER, SERVER, document)
    assert state.identities == (P2,) and state.unresolved_identities == ()


def test_a_principal_missing_from_the_servers_document_is_read_from_the_identity_itself():
    asked = []

    def resolve(identity_id: str) -> str | None:
        asked.append(identity_id)
        return P1

    state = state_from_arm(ConsumerKind.MYSQL_FLEXIBLE_SERVER, SERVER, _server(UAMI_1, assigned={UAMI_1: {}}), resolve)
    assert state.identities == (P1,) and asked == [UAMI_1.lower()]


def test_an_identity_that_cannot_be_resolved_is_named_not_guessed():
    state = state_from_arm(
        ConsumerKind.MYSQL_FLEXIBLE_SERVER, SERVER, _server(UAMI_1, assigned={}), lambda _identity: None
    )
    assert state.identities == () and state.unresolved_identities == (UAMI_1.lower(),)


def test_the_geo_backup_identity_counts_too():
    document = _server(UAMI_1, assigned={UAMI_1: {"principalId": P1}, UAMI_2: {"principalId": P2}}, geo=UAMI_2)
    state = state_from_arm(ConsumerKind.MYSQL_FLEXIBLE_SERVER, SERVER, document)
    assert state.identities == (P1, P2)


def test_a_disk_encryption_sets_identity_system_or_user_assigned():
    props = {"activeKey": {"keyUrl": KEY}}
    system = {"identity": {"type": "SystemAssigned", "principalId": SYSTEM}, "properties": props}
    user = {"identity": {"type": "UserAssigned", "userAssignedIdentities": {UAMI_1: {}}}, "properties": props}
    assert state_from_arm(ConsumerKind.DISK_ENCRYPTION_SET, DES, system).identities == (SYSTEM,)
    assert state_from_arm(ConsumerKind.DISK_ENCRYPTION_SET, DES, user, lambda _i: P1).identities == (P1,)
