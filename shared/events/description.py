"""One log-safe line per parsed event or rejection, for the trigger's log and the dispatcher's "ignored" lines."""

from __future__ import annotations

from shared.events.values import (
    KeyEvent,
    ParsedEvent,
    Rejection,
    RoleAssignmentChanged,
    SubscriptionValidation,
    VaultAccessPolicyChanged,
)
from shared.untrusted import describe_value


def describe(item: ParsedEvent | Rejection) -> str:
    """One log-safe line: type, what it is about, and version or reason.

    Every value that came from the payload is escaped and capped on its own, so a hostile id can neither break the
    line nor push the reason out of it.
    """

    def v(value: object, limit: int = 100) -> str:
        return describe_value(value, limit=limit)

    match item:
        case KeyEvent():
            return (
                f"{item.event_type} key={v(item.vault_name)}/{v(item.key_ref.name)} version={v(item.version)} "
                f"id={v(item.event_id)}"
            )
        case VaultAccessPolicyChanged():
            return f"{item.event_type} vault={v(item.vault_name)} id={v(item.event_id)}"
        case RoleAssignmentChanged():
            keys = ",".join(sorted(f"{k.ref.vault_host}/{k.ref.name}" for k in item.affected_keys))
            return (
                f"{item.event_type} role assignment {item.operation} scope={v(item.scope, 300)} keys={v(keys, 300)} "
                f"id={v(item.event_id)}"
            )
        case SubscriptionValidation():
            return f"{item.event_type} id={v(item.event_id)}"
        case Rejection():
            return (
                f"rejected {item.reason.value} type={v(item.event_type)} id={v(item.event_id)}: {v(item.message, 400)}"
            )
    return f"unexpected {type(item).__name__}"
