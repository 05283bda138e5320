"""A consumer's state is part of compliance: the identity it really uses, whether it reaches its key, and whether it
moved to the current version in time; a revocation in force sanctions what it causes."""

from __future__ import annotations

import uuid
from datetime import timedelta

from functions.compliance.report import report_keys
from shared.errors import ServiceUnavailable
from shared.model import ConsumerKind, Severity

AKS, MYSQL = "aks-encryption-key", "mysql-encryption-key"


def _consumer(world, name: str, kind: ConsumerKind):
    [consumer] = world.key(name).consumers_of(kind)
    return consumer.kind.value, consumer.resource_id


def _findings(world, name: str, **ports) -> dict[str, object]:
    report = report_keys(**{**world.ports(), "consumers": world.consumers, **ports})
    return {f.code: f for f in report.findings if f.key == name}


def test_the_reference_deployment_with_its_consumers_is_compliant(world):
    assert world.report().findings == []


def test_a_server_moved_to_another_identity_is_a_critical_mismatch_naming_both(world):
    second = str(uuid.uuid4())
    world.consumers.use_identity(*_consumer(world, MYSQL, ConsumerKind.MYSQL_FLEXIBLE_SERVER), second)
    found = _findings(world, MYSQL)
    mismatch = found["ConsumerIdentityMismatch"]
    assert mismatch.severity is Severity.CRITICAL
    assert second in mismatch.message and world.key(MYSQL).identity.principal_id in mismatch.message


def test_an_inaccessible_server_is_critical(world):
    world.consumers.set_available(*_consumer(world, MYSQL, ConsumerKind.MYSQL_FLEXIBLE_SERVER), False, "no key")
    assert _findings(world, MYSQL)["ConsumerInaccessible"].severity is Severity.CRITICAL


def test_a_des_with_an_auto_key_rotation_error_is_high(world):
    des = _consumer(world, AKS, ConsumerKind.DISK_ENCRYPTION_SET)
    world.consumers.set_rotation_error(*des, "KeyVaultAccessForbidden: the identity cannot get the key")
    assert _findings(world, AKS)["ConsumerKeyRotationError"].severity is Severity.HIGH


def test_a_consumer_left_on_an_old_version_past_its_kinds_lag_is_high(world):
    world.vault.rotate_key(world.key(MYSQL).ref)
    world.clock.advance(timedelta(minutes=30))
    assert "ConsumerVersionLag" not in _findings(world, MYSQL)  # the move may still be under way
    world.clock.advance(timedelta(minutes=31))
    assert _findings(world, MYSQL)["ConsumerVersionLag"].severity is Severity.HIGH


def test_a_des_following_the_latest_gets_azures_hour_plus_a_margin(world):
    kind, resource_id = _consumer(world, AKS, ConsumerKind.DISK_ENCRYPTION_SET)
    world.consumers.add(kind, resource_id, world.vault.get_key(world.key(AKS).ref).key_id, follows_latest=True,
                        identities=(world.key(AKS).identity.principal_id,))  # fmt: skip
    world.vault.rotate_key(world.key(AKS).ref)
    world.clock.advance(timedelta(minutes=90))
    assert "ConsumerVersionLag" not in _findings(world, AKS)
    world.clock.advance(timedelta(minutes=31))
    assert "ConsumerVersionLag" in _findings(world, AKS)


def test_a_consumer_that_cannot_be_read_is_a_finding_not_a_failed_report(world):
    class Unreadable:
        def get_state(self, kind, resource_id):
            raise ServiceUnavailable("ARM unavailable")

    assert _findings(world, MYSQL, consumers=Unreadable())["ConsumerUnreadable"].severity is Severity.HIGH


def test_a_revocation_in_force_sanctions_what_it_does_to_the_consumer(world):
    key = world.key(MYSQL)
    world.consumers.set_available(*_consumer(world, MYSQL, ConsumerKind.MYSQL_FLEXIBLE_SERVER), False, "no key")
    world.revocations.revoke(MYSQL, key.identity.principal_id, at=world.clock.now())
    found = _findings(world, MYSQL, revocations=world.revocations)
    assert "ConsumerInaccessible" not in found and found["AccessRevoked"].severity is Severity.WARNING


def test_get_api_keys_shows_the_identity_each_consumer_really_uses_and_the_mismatch(world):
    from functions.api.key_status import keys_status

    second = str(uuid.uuid4())
    world.consumers.use_identity(*_consumer(world, MYSQL, ConsumerKind.MYSQL_FLEXIBLE_SERVER), second)
    skip = ("alerts", "claims", "pacer", "rewrap_queue", "move_queue")
    body = keys_status(**{k: v for k, v in world.sweep_ports().items() if k not in skip})
    mysql = next(k for k in body["keys"] if k["name"] == MYSQL)
    [server] = mysql["dependents"]["consumers"]
    assert server["identities"] == [second]
    assert {f["code"]: f["severity"] for f in mysql["findings"]}["ConsumerIdentityMismatch"] == "critical"
