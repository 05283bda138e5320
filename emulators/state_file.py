"""Saving the emulators' state to one JSON file after every change, so a restart keeps keys and role assignments.

Writes are coalesced (many mutations in one event-loop turn make one write) and atomic (temp file + rename): a kill
at any moment leaves either the old or the new file, never a torn one. It is a local emulator's file, so it does
hold private keys; it lives in the --state-dir the caller chose, never in the repository unless put there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
STATE_FILE_NAME = "emulators-state.json"
FORMAT_VERSION = 1


class StateFile:
    def __init__(self, directory: Path | None, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = directory / STATE_FILE_NAME if directory else None
        self._snapshot = snapshot
        self._pending = False
        self.suspended = False  # True while restoring, so restoring does not write back

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: format {data.get('format')!r} is not {FORMAT_VERSION}")
        return data

    def mark_dirty(self) -> None:
        """Schedule a save on the running loop (once per loop turn); save at once when no loop runs."""
        if self.path is None or self.suspended or self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._pending = True
        loop.call_soon(self.save)

    def save(self) -> None:
        self._pending = False
        if self.path is None or self.suspended:
            return
        data = {"format": FORMAT_VERSION, **self._snapshot()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
