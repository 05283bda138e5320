"""Routes typed events to their handlers and says, as a value, what became of each one.

The trigger logs from the outcome; a rejection is never raised (a malformed or foreign event must not be redelivered
for a day), while a handler's transient failure is (so Event Grid redelivers it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from functions.registry import Handler
from shared.events import ParsedEvent, Rejection, RejectReason, SubscriptionValidation, describe


class Invoke(Protocol):
    """Calls a handler with the event and its ports (in the app: bootstrap's Container.call, ports by name)."""

    def __call__(self, handler: Handler, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Dispatched:
    status: Literal["handled", "ignored", "rejected"]
    event_type: str | None
    summary: str
    result: Any = None


def dispatch(item: ParsedEvent | Rejection, handlers: Mapping[type, Handler], *, call: Invoke) -> Dispatched:
    if isinstance(item, Rejection):
        # The status says "rejected" (or "ignored") once; describe() starts with the word for other readers.
        summary = describe(item).removeprefix("rejected ")
        if item.reason is RejectReason.OWN_CHANGE:
            return Dispatched("ignored", item.event_type, summary)
        return Dispatched("rejected", item.event_type, summary)
    if isinstance(item, SubscriptionValidation):
        # The host (or Event Grid's handshake in front of it) answers validation; nothing for a handler to do.
        return Dispatched("ignored", item.event_type, f"subscription validation: {describe(item)}")
    handler = handlers.get(type(item))
    if handler is None:
        return Dispatched("ignored", item.event_type, f"no handler yet for {describe(item)}")
    return Dispatched("handled", item.event_type, describe(item), call(handler, item))
