"""The Azure services that use a key (MySQL flexible server, disk encryption set): the identity each really uses, moving
it to a new key version, and how well it is kept.

functions.consumers.identities reads each consumer's state through ARM; functions.consumers.moves decides and starts a
move to the new version (a long-running ARM PATCH, started from a queue and followed up, never waited on), with its
queue messages in functions.consumers.move_messages; functions.consumers.review judges consumers for the report.
"""

from functions.consumers.identities import ConsumerStates, read_consumer_states
from functions.consumers.move_messages import MoveMessage, parse_move_message
from functions.consumers.moves import (
    CONSUMER_ALERT,
    GIVE_UP_AFTER,
    alert_poisoned_move,
    decide_move,
    move_claim_id,
    move_consumer,
)
from functions.consumers.review import review_consumers

__all__ = [
    "CONSUMER_ALERT",
    "GIVE_UP_AFTER",
    "ConsumerStates",
    "MoveMessage",
    "alert_poisoned_move",
    "decide_move",
    "move_claim_id",
    "move_consumer",
    "parse_move_message",
    "read_consumer_states",
    "review_consumers",
]
