"""The identities a key's Azure consumers really use, as ARM reports them, next to the one the inventory names.

An operator may move a MySQL server's encryption to another user-assigned identity (or a DES to another identity)
without telling the inventory. The identity that loses the server its key when a grant goes is then the one ARM
names, not the inventory's: reconcile must leave its key use alone, compliance must say that the two differ, and a
revocation of the service must revoke the identity the service really uses. This module reads those identities once
per key, for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import CmkError, NotFound
from shared.model import ConsumerState
from shared.ports import Consumers


@dataclass(frozen=True)
class ConsumerStates:
    """What each Azure consumer of one key reports (`states`), and which could not be read (`unreadable`: resource
    id and the error's words). A consumer that does not exist is neither: it uses no identity."""

    key: str
    inventory_identity: str
    states: tuple[ConsumerState, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def identities(self) -> dict[str, str]:
        """Principal id (lower case) -> the resource id of a consumer that reaches the key with it."""
        found: dict[str, str] = {}
        for state in self.states:
            for principal in state.identities:
                found.setdefault(principal.lower(), state.resource_id)
        return found

    @property
    def attached(self) -> dict[str, str]:
        """Identities attached to a consumer that it could be moved to (not the inventory's, not one it uses now)."""
        found: dict[str, str] = {}
        for state in self.states:
            for principal in state.attached_identities:
                found.setdefault(principal.lower(), state.resource_id)
        return {p: r for p, r in found.items() if p != self.inventory_identity and p not in self.identities}

    @property
    def others(self) -> dict[str, str]:
        """The identities consumers really use that are not the inventory's (a mismatch)."""
        return {p: r for p, r in self.identities.items() if p != self.inventory_identity}

    @property
    def uncertain(self) -> tuple[tuple[str, str], ...]:
        """Consumers whose identity is not known: unreadable, or an identity whose principal could not be read."""
        unresolved = tuple(
            (s.resource_id, f"identity {', '.join(s.unresolved_identities)} could not be resolved")
            for s in self.states
            if s.unresolved_identities
        )
        return self.unreadable + unresolved

    def mismatched(self) -> tuple[ConsumerState, ...]:
        """Consumers whose identities are known and do not include the inventory's identity, or include another."""
        return tuple(
            s for s in self.states if s.identities and {p.lower() for p in s.identities} != {self.inventory_identity}
        )


def read_consumer_states(managed: Any, consumers: Consumers | None) -> ConsumerStates:
    """Every Azure consumer of `managed` as ARM reports it now. Never raises: what cannot be read is listed."""
    inventory_identity = managed.identity.principal_id.lower()
    if consumers is None:
        return ConsumerStates(managed.name, inventory_identity)
    states: list[ConsumerState] = []
    unreadable: list[tuple[str, str]] = []
    for consumer in managed.consumers:
        if not consumer.resource_id:
            continue  # the app's own DEK table: the app's identity, not a consumer's
        try:
            states.append(consumers.get_state(consumer.kind.value, consumer.resource_id))
        except NotFound:
            continue
        except CmkError as exc:
            unreadable.append((consumer.resource_id, f"{exc.code}: {exc}"))
    return ConsumerStates(managed.name, inventory_identity, tuple(states), tuple(unreadable))
