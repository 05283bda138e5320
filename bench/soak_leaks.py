"""The soak's key-material scan: does any log line of any process carry a known secret, raw or encoded?

The soak knows every DEK plaintext its workload made and can read the emulated vault's private keys; a leak is any
32-byte window of one of them appearing in a log, as raw bytes, as hex (either case), or as base64 (standard or
URL-safe, padded or not, at any alignment inside a longer run). Every secret is cut into 32-byte windows (a DEK is
one window; a 2048-bit private exponent is several), and the logs are searched for encoded runs long enough to hold
one window, which are decoded at every alignment and looked up in a set: linear in the size of the logs, whatever
the number of secrets, so a few thousand DEKs over tens of megabytes of logs take seconds, not hours.

Raw bytes: a random 32-byte value is almost surely not printable ASCII, so only lines with other bytes are scanned
window by window; a secret that happens to be all printable is searched for directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WINDOW = 32
_HEX_RUN = re.compile(rb"[0-9a-fA-F]{%d,}" % (2 * WINDOW))
_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{%d,}" % (4 * WINDOW // 3))  # 43 characters hold 32 bytes
_NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e\t\r\n]")


@dataclass(frozen=True)
class Leak:
    """Where a secret was found: the log, its line number, the form, and which secret (its label, never its bytes)."""

    log: str
    line: int
    form: str
    secret: str


class SecretIndex:
    """32-byte windows of every known secret, each mapped to a label that names it without revealing it."""

    def __init__(self) -> None:
        self._windows: dict[bytes, str] = {}
        self._printable: dict[bytes, str] = {}

    def add(self, label: str, secret: bytes) -> None:
        if len(secret) < WINDOW:
            raise ValueError(f"{label}: a secret shorter than {WINDOW} bytes cannot be scanned for reliably")
        step = WINDOW // 2  # overlapping windows: any excerpt of 48 bytes or more holds a whole one
        for start in range(0, len(secret) - WINDOW + 1, step):
            self._add_window(secret[start : start + WINDOW], label)
        self._add_window(secret[-WINDOW:], label)

    def _add_window(self, window: bytes, label: str) -> None:
        self._windows.setdefault(window, label)
        if not _NOT_PRINTABLE.search(window):
            self._printable.setdefault(window, label)

    def __len__(self) -> int:
        return len(self._windows)

    def find_in(self, data: bytes) -> str | None:
        """The label of a secret window that occurs anywhere in `data` (decoded bytes), else None."""
        windows = self._windows
        for start in range(len(data) - WINDOW + 1):
            label = windows.get(data[start : start + WINDOW])
            if label is not None:
                return label
        return None

    def scan_line(self, line: bytes) -> list[tuple[str, str]]:
        """(form, label) of every leak in one log line."""
        found: list[tuple[str, str]] = []
        if _NOT_PRINTABLE.search(line):
            label = self.find_in(line)
            if label:
                found.append(("raw", label))
        for window, label in self._printable.items():
            if window in line:
                found.append(("raw", label))
        for run in _HEX_RUN.findall(line):
            for offset in (0, 1):
                chunk = run[offset:]
                chunk = chunk[: len(chunk) // 2 * 2]
                label = self.find_in(binascii.unhexlify(chunk))
                if label:
                    found.append(("hex", label))
                    break
        for run in _B64_RUN.findall(line):
            label = self._find_base64(run)
            if label:
                found.append(label)
        return found

    def _find_base64(self, run: bytes) -> tuple[str, str] | None:
        for offset in range(4):
            chunk = run[offset:]
            tail = len(chunk) % 4  # an unpadded end: 2 or 3 characters still carry bytes, 1 carries none
            chunk = chunk[:-1] if tail == 1 else chunk + b"=" * ((4 - tail) % 4)
            if len(chunk) < 4:
                continue
            for form, altchars in (("base64", b"+/"), ("base64url", b"-_")):
                other = b"-_" if altchars == b"+/" else b"+/"
                if any(c in chunk for c in other):
                    continue
                try:
                    decoded = base64.b64decode(chunk, altchars=altchars, validate=True)
                except (binascii.Error, ValueError):
                    continue
                label = self.find_in(decoded)
                if label:
                    return form, label
        return None


def scan_logs(index: SecretIndex, paths: Iterable[Path]) -> list[Leak]:
    """Every leak in the given log files (each read as bytes, line by line)."""
    leaks: list[Leak] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        for number, line in enumerate(data.split(b"\n"), start=1):
            for form, label in index.scan_line(line):
                leaks.append(Leak(path.name, number, form, label))
    return leaks


def scan_lines(index: SecretIndex, name: str, lines: Iterable[str]) -> list[Leak]:
    """Every leak in lines held in memory (a process's output as it was printed, before any scrubbing)."""
    leaks: list[Leak] = []
    for number, line in enumerate(lines, start=1):
        for form, label in index.scan_line(line.encode("utf-8", errors="surrogateescape")):
            leaks.append(Leak(name, number, form, label))
    return leaks
