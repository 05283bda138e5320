"""A consumer move meets ARM's transient failures (throttling, timeouts, dropped connections) as it meets a busy
resource: it keeps its claim, looks again after the follow-up delay, and is given up (one alert) only after the
move's deadline. Before, the failure went to the host, whose few quick retries (5, `visibilityTimeout` apart) poisoned
the message and raised a high NotMoved alert for half a minute of ARM trouble (seen in the soak on a starved
machine)."""

from __future__ import annotations

from datetime import timedelta

from functions.consumers.moves import CONSUMER_ALERT, GIVE_UP_AFTER, move_claim_id, move_consumer
from functions.rewrap.fan_out import on_new_version
from shared.errors import ServiceUnavailable, Throttled
from shared.events import KeyNewVersionCreated

MYSQL = "mysql-encryption-key"


class Flaky:
    """The Consumers port, failing its next `failures` calls of each named method transiently."""

    def __init__(self, inner, failures: int, methods: tuple[str, ...], error=ServiceUnavailable) -> None:
        self._inner, self._left, self._methods, self._error = inner, failures, methods, error

    def __getattr__(self, name):
        method = getattr(self._inner, name)
        if name not in self._methods:
            return method

        def call(*args, **kwargs):
            if self._left > 0:
                self._left -= 1
                raise self._error(f"{name}: the connection was dropped")
            return method(*args, **kwargs)

        return call


def _server(world):
    return next(c for c in world.key(MYSQL).consumers if c.kind.value == "mysql-flexible-server")


def _run(world, consumers, steps: int = 200) -> list:
    results = []
    for _ in range(steps):
        queued, world.move_queue.messages = world.move_queue.messages, []
        if not queued:
            return results
        for item in queued:
            world.clock.advance(timedelta(seconds=item.delay_seconds))
            results.append(move_consumer(item.message, **{**world.move_ports(), "consumers": consumers}))
    raise AssertionError("the move did not converge")


def _new_version(world):
    world.clock.advance(timedelta(seconds=1))
    new = world.vault.rotate_key(world.key(MYSQL).ref)
    on_new_version(world.key_event(KeyNewVersionCreated, MYSQL, new.version), **world.rewrap_ports())
    return new


def test_a_patch_that_fails_transiently_again_and_again_is_sent_again_later_not_poisoned(world):
    new = _new_version(world)
    flaky = Flaky(world.consumers, failures=8, methods=("start_move",), error=Throttled)
    results = _run(world, flaky)  # never raises to the host, so the host never poisons it
    assert results[-1].action == "moved"
    server = _server(world)
    assert world.consumers.get_state(server.kind.value, server.resource_id).key_url == new.key_id
    assert len(world.consumers.moves) == 1 and world.alerts.published == []


def test_reads_that_fail_transiently_are_retried_by_the_move_itself(world):
    new = _new_version(world)
    flaky = Flaky(world.consumers, failures=6, methods=("get_state", "move_status"))
    results = _run(world, flaky)
    assert results[-1].action == "moved" and world.alerts.published == []
    server = _server(world)
    assert world.consumers.get_state(server.kind.value, server.resource_id).key_url == new.key_id


def test_arm_unreachable_past_the_deadline_is_given_up_once_with_one_alert(world):
    new = _new_version(world)
    flaky = Flaky(world.consumers, failures=10**6, methods=("start_move",))
    results = []
    for _ in range(50):
        world.clock.advance(GIVE_UP_AFTER / 20)
        queued, world.move_queue.messages = world.move_queue.messages, []
        for item in queued:
            results.append(move_consumer(item.message, **{**world.move_ports(), "consumers": flaky}))
        if not world.move_queue.messages:
            break
    assert results[-1].action == "gave-up"
    [alert] = world.alerts.published
    assert alert.type == CONSUMER_ALERT
    assert world.claims.get(move_claim_id(_server(world).resource_id, new.version)) is None
