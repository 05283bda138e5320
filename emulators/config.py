"""What the emulators are configured with (`python -m emulators --config file.json`): the tenant and subscription, the
vaults, the Event Grid topic and its subscriptions, throttling, RBAC propagation and Azure's timings, each field
checked with a ConfigError that names it.

Split from emulators.server (which composes the services from this) and re-exported there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emulators.credential import DEFAULT_TENANT_ID
from emulators.faults import SpecError, ThrottleSettings, parse_throttle
from emulators.rbac_propagation import DEFAULT_MAX_SECONDS, check_max_seconds

DEFAULT_SUBSCRIPTION_ID = "3c1d2e4f-6a7b-4c8d-9e0f-a1b2c3d4e5f6"
DEFAULT_VAULT = {"name": "kv-cmk-reference", "resource_group": "rg-cmk-reference"}
DEFAULT_TOPIC_KEY = "local-emulator-topic-key"
DEFAULT_TOPIC_NAME = "cmk-guardian-alerts"


class ConfigError(ValueError):
    """A bad configuration value; the message names the field."""


@dataclass(frozen=True)
class VaultConfig:
    name: str
    resource_group: str
    location: str = "westeurope"
    soft_delete_retention_days: int = 90
    purge_protection: bool = True


@dataclass(frozen=True)
class EmulatorConfig:
    tenant_id: str = DEFAULT_TENANT_ID
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    vaults: tuple[VaultConfig, ...] = (VaultConfig(**DEFAULT_VAULT),)
    # Managed HSMs (emulators.managed_hsm): no events, local RBAC, the 100-version cap.
    managed_hsms: tuple[VaultConfig, ...] = ()
    topic_key: str = DEFAULT_TOPIC_KEY
    topic_name: str = DEFAULT_TOPIC_NAME
    eventgrid_subscriptions: tuple[dict[str, Any], ...] = ()
    throttling: ThrottleSettings = field(default_factory=ThrottleSettings)
    eventgrid_retry_scale: float = 1.0
    rbac_propagation_max_seconds: float = DEFAULT_MAX_SECONDS
    rbac_propagation_seed: int = 0
    # Azure's timing (see emulators.operations, emulators.consumers, emulators.disks, emulators.eventgrid).
    lro_seconds: float = 40.0
    des_follow_seconds: float = 30 * 60.0
    des_disk_move_seconds: float = 20 * 60.0
    eventgrid_timeout_seconds: float = 30.0


_SECONDS_FIELDS = ("lro_seconds", "des_follow_seconds", "des_disk_move_seconds", "eventgrid_timeout_seconds")


def _seconds(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name}: expected a number of seconds >= 0, got {value!r}")
    if name == "eventgrid_timeout_seconds" and value == 0:
        raise ConfigError(f"{name}: expected a number of seconds > 0, got {value!r}")
    return float(value)


def _string(data: dict[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _vault_list(raw_vaults: Any, field: str) -> list[VaultConfig]:
    """Vaults (or Managed HSMs): name, resource group and protection settings, each checked and named."""
    vaults = []
    for i, raw in enumerate(raw_vaults):
        if not isinstance(raw, dict):
            raise ConfigError(f"{field}[{i}]: expected an object with name and resource_group")
        name = _string(raw, "name", "")
        if not (3 <= len(name) <= 24) or not all(c.isalnum() or c == "-" for c in name):
            raise ConfigError(f"{field}[{i}].name: 3-24 letters, digits and dashes, got {name!r}")
        retention = raw.get("soft_delete_retention_days", 90)
        if not isinstance(retention, int) or isinstance(retention, bool) or not 7 <= retention <= 90:
            raise ConfigError(f"{field}[{i}].soft_delete_retention_days: 7 to 90 days, got {retention!r}")
        purge_protection = raw.get("purge_protection", True)
        if not isinstance(purge_protection, bool):
            raise ConfigError(f"{field}[{i}].purge_protection: expected true or false, got {purge_protection!r}")
        vaults.append(
            VaultConfig(
                name,
                _string(raw, "resource_group", DEFAULT_VAULT["resource_group"]),
                raw.get("location") or "westeurope",
                retention,
                purge_protection,
            )
        )
    if len({v.name.lower() for v in vaults}) != len(vaults):
        raise ConfigError(f"{field}: names must be unique")
    return vaults


def parse_config(data: Any) -> EmulatorConfig:
    if not isinstance(data, dict):
        raise ConfigError("config: expected a JSON object")
    known = {
        "tenant_id",
        "subscription_id",
        "vaults",
        "managed_hsms",
        "topic_key",
        "topic_name",
        "eventgrid_subscriptions",
        "subscriptions",
        "throttling",
        "eventgrid_retry_scale",
        "rbac_propagation_max_seconds",
        "rbac_propagation_seed",
        *_SECONDS_FIELDS,
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config: unknown field(s) {unknown}; known: {sorted(known)}")
    raw_vaults = data.get("vaults", [DEFAULT_VAULT])
    if not isinstance(raw_vaults, list) or not raw_vaults:
        raise ConfigError("vaults: expected a non-empty list of {name, resource_group}")
    vaults = _vault_list(raw_vaults, "vaults")
    raw_hsms = data.get("managed_hsms", [])
    if not isinstance(raw_hsms, list):
        raise ConfigError("managed_hsms: expected a list of {name, resource_group}")
    hsms = _vault_list(raw_hsms, "managed_hsms")
    if {v.name.lower() for v in vaults} & {h.name.lower() for h in hsms}:
        raise ConfigError("managed_hsms: a Managed HSM may not share a name with a vault")
    subscriptions = data.get("eventgrid_subscriptions", data.get("subscriptions", []))
    if not isinstance(subscriptions, list) or not all(isinstance(s, dict) for s in subscriptions):
        raise ConfigError("eventgrid_subscriptions: expected a list of objects")
    try:
        throttling = parse_throttle(data["throttling"]) if "throttling" in data else ThrottleSettings()
    except SpecError as exc:
        raise ConfigError(f"throttling.{exc}") from None
    scale = data.get("eventgrid_retry_scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool) or scale <= 0:
        raise ConfigError(f"eventgrid_retry_scale: expected a positive number, got {scale!r}")
    try:
        propagation = check_max_seconds(
            data.get("rbac_propagation_max_seconds", DEFAULT_MAX_SECONDS), "rbac_propagation_max_seconds"
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    seed = data.get("rbac_propagation_seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"rbac_propagation_seed: expected an integer, got {seed!r}")
    return EmulatorConfig(
        tenant_id=_string(data, "tenant_id", DEFAULT_TENANT_ID),
        subscription_id=_string(data, "subscription_id", DEFAULT_SUBSCRIPTION_ID),
        vaults=tuple(vaults),
        managed_hsms=tuple(hsms),
        topic_key=_string(data, "topic_key", DEFAULT_TOPIC_KEY),
        topic_name=_string(data, "topic_name", DEFAULT_TOPIC_NAME),
        eventgrid_subscriptions=tuple(subscriptions),
        throttling=throttling,
        eventgrid_retry_scale=float(scale),
        rbac_propagation_max_seconds=propagation,
        rbac_propagation_seed=seed,
        **{name: _seconds(data, name, getattr(EmulatorConfig, name)) for name in _SECONDS_FIELDS},
    )


def with_propagation(config: EmulatorConfig, max_seconds: float) -> EmulatorConfig:
    """The config with another RBAC propagation maximum (the --rbac-propagation-max-seconds option)."""
    try:
        return replace(
            config, rbac_propagation_max_seconds=check_max_seconds(max_seconds, "--rbac-propagation-max-seconds")
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def load_config(path: Path | None) -> EmulatorConfig:
    if path is None:
        return EmulatorConfig()
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--config: {path} is not valid JSON ({exc})") from None
    return parse_config(data)


def vault_resource_id(config: EmulatorConfig, vault: VaultConfig) -> str:
    return (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{vault.resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{vault.name}"
    )


def hsm_resource_id(config: EmulatorConfig, hsm: VaultConfig) -> str:
    return (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{hsm.resource_group}"
        f"/providers/Microsoft.KeyVault/managedHSMs/{hsm.name}"
    )
