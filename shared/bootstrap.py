"""Wiring: settings -> adapters, built on first use and kept for the life of the worker process.

Cold start matters on Azure Functions, so nothing here imports an Azure SDK at module level: each adapter's import
happens the first time a function needs it, and an HTTP call that only needs the inventory never pays for the rest.
Handlers never import this module; tests pass fakes straight to handlers instead.

Ports are the Container's public properties, named as handlers name their keyword-only parameters (`vault`,
`inventory`, `access`, `clock`, `alerts`, `publisher`, ...): `deps().call(handler, event)` fills them by name
(shared.binding), so a new port is one property here and a new handler needs no wiring at all.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from functools import cached_property
from typing import Any

from shared.binding import Bound, Handler, bind, properties_of
from shared.clock import RemoteClock, SystemClock
from shared.errors import InvalidSetting
from shared.settings import Settings, require_local_for_insecure


class Container:
    """The process's adapters. Each property builds once (cached_property under a lock: workers are threaded)."""

    # Public properties that are not ports: what adapters are built from, never handed to a handler.
    NOT_PORTS = frozenset({"credential", "storage_credential"})

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._bound: dict[Handler, Bound] = {}

    @classmethod
    def ports(cls) -> frozenset[str]:
        return properties_of(cls, cls.NOT_PORTS)

    def bind(self, handler: Handler) -> Bound:
        """`handler` with its keyword-only ports filled from this container by name, each built on first call.
        UnboundPort, now, for a port no property provides; the binding is kept, so a handler is inspected once."""
        bound = self._bound.get(handler)
        if bound is None:
            bound = self._bound.setdefault(handler, bind(handler, self, self.ports()))
        return bound

    def call(self, handler: Handler, /, *args: Any) -> Any:
        """Call `handler(*args)` with its ports, e.g. `deps().call(compliance.report_keys)`."""
        return self.bind(handler)(*args)

    def _once(self, name: str, build) -> Any:
        with self._lock:
            if name not in self.__dict__:
                self.__dict__[name] = build()
            return self.__dict__[name]

    @property
    def inventory(self):
        def build():
            from shared.inventory import InventoryError, load_inventory
            from shared.inventory.consumers import dek_table_problems

            inventory = load_inventory(self.settings.inventory_path, os.environ)
            # Start-up check against settings (H4): a dek-table consumer on a table the app never reads is refused.
            if problems := dek_table_problems(inventory, self.settings.dek_table):
                raise InventoryError(problems, path=str(self.settings.inventory_path))
            return inventory

        return self._once("_inventory", build)

    @property
    def credential(self):
        """The same credential path locally and in Azure: DefaultAzureCredential (or ManagedIdentityCredential)
        reaches the App Service managed-identity endpoint from IDENTITY_ENDPOINT/IDENTITY_HEADER, which the local
        run points at the emulators' stand-in; nothing here knows the emulators exist."""

        def build():
            s = self.settings
            if s.credential == "managed-identity":
                from azure.identity import ManagedIdentityCredential

                return ManagedIdentityCredential(client_id=s.managed_identity_client_id)
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential(managed_identity_client_id=s.managed_identity_client_id)

        return self._once("_credential", build)

    @property
    def vault(self):
        """The KeyVault port (keys, versions, rotation policies, wrap/unwrap)."""

        def build():
            from shared.azure.keyvault import AzureKeyVault
            from shared.azure.transport import call_counter, shared_pool
            from shared.envelope import CachedKeyReads

            require_local_for_insecure(self.settings, vault_urls=[v.url for v in self.inventory.vaults])

            # One cache of versioned key reads per process: a rotation's shard messages read the key once (issue 21).
            return CachedKeyReads(
                AzureKeyVault(
                    self.credential,
                    connection_verify=self.settings.connection_verify,
                    verify_challenge_resource=self.settings.verify_challenge_resource,
                    transport=shared_pool(self.settings.connection_verify),  # sized to the re-wrap: no "pool full"
                    response_hook=call_counter(self.telemetry),  # cmk.keyvault.calls and .throttled
                )
            )

        return self._once("_vault", build)

    @property
    def access(self):
        """ARM's role assignments, and each Managed HSM's local RBAC for scopes within it (shared.local_rbac)."""

        def build():
            from shared.azure.hsm_access import app_access_control

            return app_access_control(self.settings, self.inventory, self.credential)

        return self._once("_access", build)

    @property
    def roles(self):
        """Role definitions through ARM, cached per process: the access judgement reads one per role, not per
        assignment."""

        def build():
            from shared.roles.catalog import RoleCatalog

            return RoleCatalog(self.access, self.clock)

        return self._once("_roles", build)

    @property
    def vault_settings(self):
        def build():
            from shared.azure.vaults import AzureVaults

            return AzureVaults(
                self.credential, base_url=self.settings.arm_endpoint, connection_verify=self.settings.connection_verify
            )

        return self._once("_vault_settings", build)

    @property
    def consumers(self):
        """MySQL flexible servers and disk encryption sets, read and moved to new key versions through ARM."""

        def build():
            from shared.azure.consumers import AzureConsumers

            return AzureConsumers(
                self.credential, base_url=self.settings.arm_endpoint, connection_verify=self.settings.connection_verify
            )

        return self._once("_consumers", build)

    @property
    def storage_credential(self):
        """Who the app's queues and tables authenticate as when AzureWebJobsStorage is identity-based: the identity
        the host's own `__credential`/`__clientId` settings name, so the app's messages land where its triggers
        poll with the same rights; with neither, the app's credential (DefaultAzureCredential, as the host's)."""

        def build():
            storage = self.settings.storage
            if storage.credential == "managedidentity":
                from azure.identity import ManagedIdentityCredential

                if storage.resource_id:
                    return ManagedIdentityCredential(identity_config={"mi_res_id": storage.resource_id})
                return ManagedIdentityCredential(client_id=storage.client_id)
            if storage.client_id:
                from azure.identity import DefaultAzureCredential

                return DefaultAzureCredential(managed_identity_client_id=storage.client_id)
            return self.credential

        return self._once("_storage_credential", build)

    def queue(self, name: str):
        """A queue on AzureWebJobsStorage: its connection string, or its identity-based queue service (the role the
        identity then needs: Storage Queue Data Contributor on the account)."""

        def build():
            from shared.azure.queue import StorageWorkQueue

            s = self.settings
            if s.storage.connection_string:
                return StorageWorkQueue(s.storage.connection_string, name)
            uri = s.storage.service_uri("queue", "queues (the alert outbox, re-wrap work, follow-up checks)")
            return StorageWorkQueue(
                None,
                name,
                service_uri=uri,
                credential=self.storage_credential,
                connection_verify=s.connection_verify,
            )

        return self._once(f"_queue_{name}", build)

    def _table(self, name: str):
        """A table on AzureWebJobsStorage: its connection string, or its identity-based table service (the role the
        identity then needs: Storage Table Data Contributor on the account)."""
        from shared.azure.tables import LazyTable, table_client

        s = self.settings
        if s.storage.connection_string:
            return LazyTable(table_client(name, connection_string=s.storage.connection_string))
        uri = s.storage.service_uri("table", "tables (claims, audit trail, DEK registry, re-wrap budget)")
        client = table_client(
            name, service_uri=uri, credential=self.storage_credential, connection_verify=s.connection_verify
        )
        return LazyTable(client)

    @property
    def telemetry(self):
        """Custom events and metrics (shared.telemetry.app_telemetry: the worker's Azure Monitor, or a console)."""
        from shared.telemetry import app_telemetry

        return self._once("_telemetry", lambda: app_telemetry(os.environ))

    @property
    def claims(self):
        """Exactly-once claims (rotation), in the CMK_CLAIMS_TABLE table."""

        def build():
            from shared.azure.claims import TableClaims

            return TableClaims(self._table(self.settings.claims_table))

        return self._once("_claims", build)

    @property
    def revocations(self):
        """Principals revoked from keys on purpose, in the CMK_REVOCATIONS_TABLE table."""

        def build():
            from shared.azure.revocations import TableRevocations

            return TableRevocations(self._table(self.settings.revocations_table))

        return self._once("_revocations", build)

    @property
    def access_checks(self):
        """Follow-up access checks, delivered after Key Vault has had time to apply an RBAC change."""
        from shared.queues import ACCESS_CHECK_QUEUE

        return self.queue(ACCESS_CHECK_QUEUE)

    @property
    def revocation_checks(self):
        """Follow-up checks of revocations and restorations, delivered after RBAC's propagation delay."""
        from shared.queues import REVOCATION_CHECK_QUEUE

        return self.queue(REVOCATION_CHECK_QUEUE)

    @property
    def follow_up_delay(self) -> int:
        """Real seconds a follow-up check waits in its queue: CMK_FOLLOW_UP_SECONDS (default: the propagation time)."""
        return self.settings.follow_up_seconds

    @property
    def rbac_propagation(self) -> timedelta:
        """How long Key Vault may take to apply an RBAC change, judged on the app's clock: a grant younger than this
        may not be effective yet (CMK_RBAC_PROPAGATION_SECONDS; Azure: up to about 10 minutes)."""
        return timedelta(seconds=self.settings.rbac_propagation_seconds)

    @property
    def audit(self):
        """The audit trail, in the CMK_AUDIT_TABLE table."""

        def build():
            from shared.azure.audit import TableAuditTrail

            return TableAuditTrail(self._table(self.settings.audit_table))

        return self._once("_audit", build)

    @property
    def rewrap_queue(self):
        """Where the new-version handler and the sweep put re-wrap pages, and the re-wrap worker puts their rest."""
        from shared.queues import REWRAP_QUEUE

        return self.queue(REWRAP_QUEUE)

    @property
    def move_queue(self):
        """Consumer moves (ARM long-running PATCHes) and their delayed follow-ups: decided by the new-version event
        and the sweep, carried out and followed by the `consumer_moves` function."""
        from shared.queues import MOVE_QUEUE

        return self.queue(MOVE_QUEUE)

    @property
    def reconcile_queue(self):
        """One managed key to reconcile per message, enqueued by the access-change events."""
        from shared.queues import RECONCILE_QUEUE

        return self.queue(RECONCILE_QUEUE)

    @property
    def dekstore(self):
        """The DEK registry, in the CMK_DEK_TABLE table: the same setting the inventory's dek-table consumers name
        with `${CMK_DEK_TABLE:-cmkdeks}`, so the registry the app writes is the one the inventory describes."""
        from shared.azure.dekstore import TableDekStore

        return self._once("_dekstore", lambda: TableDekStore(self._table(self.settings.dek_table)))

    @property
    def shardkeys(self):
        """Shard keys of `hierarchy: shard-keys` keys, in their own table (CMK_SHARD_KEY_TABLE)."""
        from shared.azure.shardkeys import TableShardKeyStore

        return self._once("_shardkeys", lambda: TableShardKeyStore(self._table(self.settings.shard_key_table)))

    @property
    def budget(self):
        """The re-wrap budget every worker of every instance shares, in the CMK_BUDGET_TABLE table."""
        from shared.azure.budget import TableRewrapBudget

        return self._once("_budget", lambda: TableRewrapBudget(self._table(self.settings.budget_table)))

    @property
    def alerts(self):
        """What handlers publish alerts to: the outbox queue the `deliver_alerts` function drains (each alert logged
        `pending` in the alert log first)."""
        from shared.alerts import ALERT_QUEUE, OutboxAlerts

        return self._once("_alerts", lambda: OutboxAlerts(self.queue(ALERT_QUEUE), self.alert_log, self.clock))

    @property
    def alert_log(self):
        """Each alert queued, with its delivery state, in the CMK_ALERTS_TABLE table."""

        def build():
            from shared.azure.alertlog import TableAlertLog

            return TableAlertLog(self._table(self.settings.alerts_table))

        return self._once("_alert_log", build)

    @property
    def publisher(self):
        """Where `deliver_alerts` sends them: the Event Grid alert topic."""

        def build():
            from shared.azure.alerts import EventGridAlerts

            s = self.settings
            endpoint = s.alert_topic_endpoint or self.inventory.alert_topic
            if not endpoint:
                raise InvalidSetting(
                    "CMK_ALERT_TOPIC_ENDPOINT", "no alert topic configured (nor alert_topic in the inventory)"
                )
            require_local_for_insecure(s, alert_endpoint=endpoint)
            if s.alert_topic_key:
                return EventGridAlerts(endpoint, key=s.alert_topic_key)
            return EventGridAlerts(endpoint, credential=self.credential)

        return self._once("_publisher", build)

    @property
    def pacer(self):
        """One pacer per process: the sweep's key creations stay under the vault's HSM creation limit."""
        from shared.coordination.pacing import CreationPacer

        return self._once("_pacer", CreationPacer)

    @property
    def sleep(self):
        """How a handler waits (for the next budget window): the real sleep; tests pass one that moves a clock."""
        import time

        return time.sleep

    @cached_property
    def clock(self) -> SystemClock | RemoteClock:
        if self.settings.clock_url:
            return RemoteClock(self.settings.clock_url, self.settings.ca_bundle)
        return SystemClock()


_container: Container | None = None
_container_lock = threading.Lock()


def deps() -> Container:
    """The process-wide container, built from app settings on first call."""
    global _container
    with _container_lock:
        if _container is None:
            _container = Container(Settings.from_env())
        return _container
