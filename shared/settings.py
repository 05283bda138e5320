"""App settings (environment variables), read once and validated, so a typo fails loudly at the first call with the
setting's name instead of surfacing later as a confusing SDK error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InvalidSetting

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INVENTORY_PATH_SETTING = "CMK_INVENTORY_PATH"
DEFAULT_INVENTORY_PATH = "inventory/reference.yaml"
CREDENTIAL_KINDS = ("default", "managed-identity")


@dataclass(frozen=True)
class Settings:
    inventory_path: Path
    credential: str  # default | managed-identity
    managed_identity_client_id: str | None
    ca_bundle: str | None
    verify_challenge_resource: bool
    arm_endpoint: str
    subscription_id: str | None
    alert_topic_endpoint: str | None
    alert_topic_key: str | None
    storage_connection: str | None
    sweep_schedule: str
    clock_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name, default)
            value = value.strip() if isinstance(value, str) else value
            return value or default

        inventory = inventory_path(env)
        credential = (get("CMK_CREDENTIAL", "default") or "default").lower()
        if credential not in CREDENTIAL_KINDS:
            raise InvalidSetting("CMK_CREDENTIAL", f"must be one of {', '.join(CREDENTIAL_KINDS)} (got {credential!r})")
        verify = (get("CMK_VERIFY_CHALLENGE_RESOURCE", "true") or "true").lower()
        if verify not in ("true", "false"):
            raise InvalidSetting("CMK_VERIFY_CHALLENGE_RESOURCE", f"must be true or false (got {verify!r})")
        arm = get("CMK_ARM_ENDPOINT", "https://management.azure.com") or ""
        if not arm.startswith("https://"):
            raise InvalidSetting("CMK_ARM_ENDPOINT", f"must be an https URL (got {arm!r})")
        ca = get("CMK_CA_BUNDLE")
        if ca and not Path(ca).is_file():
            raise InvalidSetting("CMK_CA_BUNDLE", f"file not found ({ca})")
        return cls(
            inventory_path=inventory,
            credential=credential,
            managed_identity_client_id=get("AZURE_CLIENT_ID"),
            ca_bundle=ca,
            verify_challenge_resource=verify == "true",
            arm_endpoint=arm.rstrip("/"),
            subscription_id=get("CMK_SUBSCRIPTION_ID"),
            alert_topic_endpoint=get("CMK_ALERT_TOPIC_ENDPOINT"),
            alert_topic_key=get("CMK_ALERT_TOPIC_KEY"),
            storage_connection=get("AzureWebJobsStorage"),
            sweep_schedule=get("CMK_SWEEP_SCHEDULE", "0 0 * * * *") or "0 0 * * * *",
            clock_url=get("CMK_CLOCK_URL"),
        )

    @property
    def connection_verify(self) -> str | bool:
        return self.ca_bundle or True


def inventory_path(env: Mapping[str, str]) -> Path:
    """CMK_INVENTORY_PATH, relative to the project root unless absolute; the reference inventory when unset."""
    path = Path((env.get(INVENTORY_PATH_SETTING) or "").strip() or DEFAULT_INVENTORY_PATH)
    return path if path.is_absolute() else PROJECT_ROOT / path
