"""What the event parser needs from the inventory, as Protocols the inventory meets structurally.

Parsing resolves every event against what is managed, so a handler only ever sees a key or vault of ours; these
Protocols keep the parser from importing the inventory (and the inventory from knowing about events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.model import KeyRef


class ManagedVaultView(Protocol):
    """The parts of the inventory's vault that identify it."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def resource_id(self) -> str: ...


class ManagedKeyView(Protocol):
    """The parts of the inventory's key the parser reads."""

    @property
    def name(self) -> str: ...

    @property
    def ref(self) -> KeyRef: ...

    @property
    def vault(self) -> ManagedVaultView: ...


class ManagedScope(Protocol):
    """What is managed. The inventory satisfies this structurally, so this module does not import it.

    `vault_host` is a lower-case netloc (host[:port]) such as `kv-x.vault.azure.net` or `127.0.0.1:8443`.
    `keys_under_scope` answers which managed keys an ARM role assignment at `scope` applies to (the key itself, its
    vault, resource group, subscription, or a management group / root above them).
    """

    def find_key(
        self, *, key_name: str, vault_name: str | None = None, vault_host: str | None = None
    ) -> ManagedKeyView | None: ...

    def find_vault(
        self, *, vault_name: str | None = None, vault_host: str | None = None, resource_id: str | None = None
    ) -> ManagedVaultView | None: ...

    def keys_under_scope(self, scope: str) -> Sequence[ManagedKeyView]: ...
