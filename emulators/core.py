"""What the emulator modules share: the movable clock, the TLS certificate, error bodies, and the two seams between
services (Key Vault asks ARM who may do what; every service hands events to Event Grid).

The emulators import nothing from the app: they model Azure, not the app's assumptions about Azure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web


class MovableClock:
    """Wall-clock time plus an offset that the admin API moves forward (time travel) or sets outright."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def timestamp(self) -> float:
        return time.time() + self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp(), tz=dt.UTC)

    def advance(self, seconds: float) -> dt.datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def advance_to(self, timestamp: float) -> dt.datetime:
        """Move forward to `timestamp` (epoch seconds); a time already passed leaves the clock alone."""
        with self._lock:
            self._offset = max(self._offset, timestamp - time.time())
        return self.now()

    def set(self, when: dt.datetime) -> dt.datetime:
        with self._lock:
            target = when.timestamp()
            if target < self.timestamp():
                raise ValueError("the clock only moves forward")
            self._offset = target - time.time()
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


class EventSink(Protocol):
    """Event Grid's side: a service publishes a system event from `topic` (an ARM resource id)."""

    def emit(self, *, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None: ...


class Authorizer(Protocol):
    """ARM's side: the data actions a principal holds at `scope` (assignments at the scope and every parent)."""

    def data_actions(self, principal_id: str, scope: str) -> set[str]: ...


def azure_error(status: int, code: str, message: str, inner: str | None = None, headers: dict | None = None):
    """An error response shaped like Azure's: {"error": {"code", "message", "innererror": {"code"}}}."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if inner:
        body["error"]["innererror"] = {"code": inner}
    return web.json_response(body, status=status, headers=headers)


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path


def make_self_signed_cert(directory: Path) -> Certificate:
    """A fresh CA-flagged self-signed certificate for 127.0.0.1 and localhost, usable as its own trust bundle.

    Generated at every start and never committed. EC P-256 keeps start-up fast.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cmk-local-emulators")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "emulators-cert.pem"
    key_path = directory / "emulators-key.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path)
