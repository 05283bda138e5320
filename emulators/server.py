"""Composes the emulators into one process: ARM + admin (HTTPS), the Event Grid topic (HTTP), one HTTPS listener
per vault, the App Service managed-identity endpoint (HTTP, last port), the movable clock, the lifecycle ticker and
the state file. Its configuration is emulators.config.

One asyncio loop serves every listener, so the services share state without locks. Each vault gets its own port
because the Key Vault SDK identifies a vault by scheme://host:port. The Event Grid topic is plain HTTP because
EventGridPublisherClient ignores connection_verify. Start-up must stay well under 2 s: heavy imports happen here,
not in __main__, and the certificate is EC P-256.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from emulators.admin import admin_routes, loopback_only
from emulators.arm_resources import DISK_ENCRYPTION_SETS
from emulators.config import (
    DEFAULT_SUBSCRIPTION_ID,
    DEFAULT_TOPIC_KEY,
    DEFAULT_TOPIC_NAME,
    DEFAULT_VAULT,
    ConfigError,
    EmulatorConfig,
    VaultConfig,
    load_config,
    parse_config,
    vault_resource_id,
    with_propagation,
)
from emulators.core import MovableClock, make_self_signed_cert
from emulators.faults import FaultInjector
from emulators.keyvault import VaultService
from emulators.keyvault_store import VaultStore
from emulators.managed_hsm_host import hsm_admin_routes, register_hsms, start_hsms
from emulators.managed_identity import TOKEN_PATH, ManagedIdentities, identity_admin_routes, token_routes
from emulators.state_file import StateFile

log = logging.getLogger("emulators")

# The configuration moved to emulators.config; __main__, localrun and the tests import it from here.
__all__ = [
    "DEFAULT_SUBSCRIPTION_ID",
    "DEFAULT_TOPIC_KEY",
    "DEFAULT_TOPIC_NAME",
    "DEFAULT_VAULT",
    "ConfigError",
    "EmulatorConfig",
    "EmulatorHost",
    "VaultConfig",
    "load_config",
    "parse_config",
    "serve",
    "vault_resource_id",
    "with_propagation",
]

LIFECYCLE_PERIOD_SECONDS = 1.0


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class EmulatorHost:
    """Every emulated service, their listeners and their shared clock; also the admin API's target."""

    def __init__(self, config: EmulatorConfig, *, state_dir: Path | None, host: str, port_base: int) -> None:
        self.config = config
        self.state_dir = state_dir.resolve() if state_dir else None
        self.host = host
        self.port_base = port_base
        self.clock = MovableClock()
        self.faults = FaultInjector(config.throttling)
        self.state = StateFile(state_dir, self.snapshot)
        self.stores: dict[str, VaultStore] = {}
        self.hsm_rbac: dict[str, Any] = {}
        self.identities = ManagedIdentities(config.tenant_id)
        self.runners: list[web.AppRunner] = []
        self._ticker: asyncio.Task | None = None
        self._temp_dir: str | None = None

    # ---- composition ----------------------------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        from emulators.arm import ArmState, arm_routes
        from emulators.eventgrid import EventGrid
        from emulators.eventgrid_http import eventgrid_admin_routes, eventgrid_topic_routes

        config = self.config
        cert_dir = self.state_dir or Path(self._make_temp_dir())
        cert = make_self_signed_cert(cert_dir)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert.cert_path, cert.key_path)

        # ARM+admin, topic, one per vault, one per Managed HSM, then the identity endpoint last (so vault ports stay
        # where they were).
        hsm_count = len(config.managed_hsms)
        ports = [self.port_base + i if self.port_base else 0 for i in range(3 + len(config.vaults) + hsm_count)]
        sockets = [_listen(self.host, p) for p in ports]
        bound = [s.getsockname()[1] for s in sockets]
        url_host = f"[{self.host}]" if ":" in self.host else self.host

        topic_id = (
            f"/subscriptions/{config.subscription_id}/resourceGroups/{config.vaults[0].resource_group}"
            f"/providers/Microsoft.EventGrid/topics/{config.topic_name}"
        )
        self.eventgrid = EventGrid(
            clock=self.clock,
            topic_key=config.topic_key,
            topic_id=topic_id,
            retry_scale=config.eventgrid_retry_scale,
            delivery_timeout=config.eventgrid_timeout_seconds,
        )
        self.arm = ArmState(
            events=self.eventgrid,
            clock=self.clock,
            tenant_id=config.tenant_id,
            subscription_id=config.subscription_id,
            rbac_propagation_max_seconds=config.rbac_propagation_max_seconds,
            rbac_propagation_seed=config.rbac_propagation_seed,
            lro_seconds=config.lro_seconds,
        )
        self.services: dict[str, VaultService] = {}
        vault_info: dict[str, dict[str, str]] = {}
        identity_endpoint = f"http://{url_host}:{bound[-1]}{TOKEN_PATH}"
        vault_ports = bound[2 : 2 + len(config.vaults)]
        for vault, port in zip(config.vaults, vault_ports, strict=True):
            url = f"https://{url_host}:{port}"
            resource_id = vault_resource_id(config, vault)
            store = VaultStore(
                name=vault.name,
                url=url,
                resource_id=resource_id,
                clock=self.clock,
                events=self.eventgrid,
                on_change=self.state.mark_dirty,
            )
            self.stores[vault.name] = store
            self.services[vault.name] = VaultService(
                store, authorizer=self.arm, tenant_id=config.tenant_id, faults=self.faults
            )
            vault_info[vault.name] = {"url": url, "resource_id": resource_id}
        hsm_info = start_hsms(self, url_host, bound[2 + len(config.vaults) : -1])

        from emulators.clock_walk import ClockWalk, propagation_admin_routes
        from emulators.consumers import ConsumerKeys, consumer_admin_routes
        from emulators.disks import DiskMoves, disk_admin_routes
        from emulators.operations import operations_admin_routes

        self.consumers = ConsumerKeys(
            self.arm,
            self.services,
            follow_delay_seconds=config.des_follow_seconds,
            disks=DiskMoves(config.des_disk_move_seconds),
        )
        self.arm.consumer_hook = self.consumers
        hsm_steps = [lambda rbac=rbac: rbac.apply_due(self.clock.timestamp()) for rbac in self.hsm_rbac.values()]
        self.walk = ClockWalk(
            self.clock,
            self.arm,
            self.stores,
            self.consumers,
            also=(*hsm_steps, self.arm.complete_due_operations),
            more_rbac=[r.rbac for r in self.hsm_rbac.values()],
        )
        restored = self.restore()
        self.register_vaults()
        if not restored:
            for spec in config.eventgrid_subscriptions:
                self.eventgrid.add_subscription(spec)

        arm_app = web.Application(middlewares=[loopback_only, self._persist_mutations], client_max_size=4 * 1024**2)
        arm_app.add_routes(admin_routes(self))
        arm_app.add_routes(identity_admin_routes(self.identities, identity_endpoint))
        arm_app.add_routes(consumer_admin_routes(self.consumers))
        arm_app.add_routes(propagation_admin_routes(self.walk, self.state.mark_dirty))
        arm_app.add_routes(operations_admin_routes(self.arm))
        arm_app.add_routes(hsm_admin_routes(self))
        arm_app.add_routes(
            disk_admin_routes(self.consumers.disks, lambda: self.arm.resources_of_type(DISK_ENCRYPTION_SETS))
        )
        eventgrid_admin = web.Application()
        eventgrid_admin.add_routes(eventgrid_admin_routes(self.eventgrid))
        arm_app.add_subapp("/admin/eventgrid", eventgrid_admin)
        arm_app.add_routes(arm_routes(self.arm))
        topic_app = web.Application(middlewares=[self._persist_mutations], client_max_size=4 * 1024**2)
        topic_app.add_routes(eventgrid_topic_routes(self.eventgrid))
        identity_app = web.Application()
        identity_app.add_routes(token_routes(self.identities))

        apps: list[tuple[web.Application, socket.socket, ssl.SSLContext | None]] = [
            (arm_app, sockets[0], tls),
            (topic_app, sockets[1], None),
        ]
        stores = [*config.vaults, *config.managed_hsms]
        apps += [(self.services[v.name].app(), s, tls) for v, s in zip(stores, sockets[2:-1], strict=True)]
        apps.append((identity_app, sockets[-1], None))
        for app, sock, context in apps:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sock, ssl_context=context).start()
            self.runners.append(runner)

        await self.eventgrid.start()
        self._ticker = asyncio.create_task(self.walk.tick_forever(LIFECYCLE_PERIOD_SECONDS))
        self.state.mark_dirty()
        return {
            "ready": True,
            "arm_url": f"https://{url_host}:{bound[0]}",
            "admin_url": f"https://{url_host}:{bound[0]}/admin",
            "eventgrid_topic_url": f"http://{url_host}:{bound[1]}/api/events",
            "eventgrid_topic_key": config.topic_key,
            "eventgrid_topic_id": topic_id,
            "identity_endpoint": identity_endpoint,
            "vaults": vault_info,
            "managed_hsms": hsm_info,
            "ca_cert": str(cert.cert_path),
            "tenant_id": config.tenant_id,
            "subscription_id": config.subscription_id,
            "state_dir": str(self.state_dir) if self.state_dir else None,
            "pid": os.getpid(),
        }

    def register_vaults(self) -> None:
        register_hsms(self)
        for vault in self.config.vaults:
            self.arm.register_vault(
                vault_resource_id(self.config, vault),
                location=vault.location,
                vault_uri=self.stores[vault.name].url + "/",
                soft_delete_retention_days=vault.soft_delete_retention_days,
                purge_protection=vault.purge_protection,
            )

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.eventgrid.stop()
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.state.save()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def _make_temp_dir(self) -> str:
        self._temp_dir = tempfile.mkdtemp(prefix="cmk-emulators-")
        return self._temp_dir

    # ---- persistence ----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "clock_offset": self.clock.timestamp() - time.time(),
            "vaults": {name: store.snapshot() for name, store in self.stores.items()},
            "arm": self.arm.snapshot(),
            "consumers": self.consumers.snapshot(),
            "eventgrid": self.eventgrid.snapshot(),
            "identities": self.identities.snapshot(),
            "managed_hsm_rbac": {name: rbac.snapshot() for name, rbac in self.hsm_rbac.items()},
        }

    def restore(self) -> bool:
        data = self.state.load()
        if data is None:
            return False
        self.state.suspended = True
        try:
            offset = float(data.get("clock_offset", 0.0))
            if offset > 0:
                self.clock.advance(offset)
            for name, store_data in data.get("vaults", {}).items():
                if name in self.stores:
                    self.stores[name].restore(store_data)
            if data.get("arm") is not None:
                self.arm.restore(data["arm"])
            self.consumers.restore(data.get("consumers") or [])
            if data.get("eventgrid") is not None:
                self.eventgrid.restore(data["eventgrid"])
            self.identities.restore(data.get("identities") or [])
            for name, rbac_data in (data.get("managed_hsm_rbac") or {}).items():
                if name in self.hsm_rbac:
                    self.hsm_rbac[name].restore(rbac_data)
        finally:
            self.state.suspended = False
        return True

    @web.middleware
    async def _persist_mutations(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status < 400:
            self.state.mark_dirty()
        return response

    # ---- time and reset (admin API) -------------------------------------------------------------------------
    async def move_clock_to(self, timestamp: float) -> None:
        """Advance the emulated clock (emulators.clock_walk: minute steps while RBAC changes are pending)."""
        await self.walk.move_to(timestamp)
        self.state.mark_dirty()

    async def reset(self) -> None:
        async with self.walk.lock:
            self.faults.reset()
            for store in self.stores.values():
                store.reset()
            self.clock.reset()
            self.arm.reset()
            self.consumers.reset()
            self.eventgrid.reset()
            for rbac in self.hsm_rbac.values():
                rbac.reset()
            self.register_vaults()
        self.state.mark_dirty()


async def serve(config: EmulatorConfig, *, state_dir: Path | None, host: str, port_base: int, started: float) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    emulator = EmulatorHost(config, state_dir=state_dir, host=host, port_base=port_base)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        info = await emulator.start()
    except OSError as exc:
        print(f"emulators: cannot start: {exc}", flush=True, file=sys.stderr)
        return 1
    info["startup_seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(info), flush=True)
    await stop.wait()
    await emulator.stop()
    return 0
