"""Builds the deployment package the way `func azure functionapp publish` and a zip deploy do: every file of the app
folder that .funcignore (gitignore syntax) does not exclude.

Only the part of gitignore syntax the project's .funcignore uses is understood, and anything else is refused rather
than guessed at, so the package built here cannot quietly differ from the one Core Tools builds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath


class UnsupportedPattern(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    parts: tuple[str, ...]  # path segments (glob each); one segment and not anchored: a name at any depth
    anchored: bool
    folders_only: bool

    def matches(self, relative: PurePosixPath, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        if not self.anchored:
            return fnmatchcase(relative.name, self.parts[0])
        return len(relative.parts) == len(self.parts) and all(
            fnmatchcase(part, glob) for part, glob in zip(relative.parts, self.parts, strict=True)
        )


def parse(text: str) -> list[Rule]:
    rules = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!") or "**" in line or "\\" in line or "[" in line:
            raise UnsupportedPattern(f".funcignore line {number}: {raw!r} uses syntax this packager does not model")
        folders_only = line.endswith("/")
        body = line.rstrip("/")
        anchored = "/" in body
        rules.append(Rule(tuple(body.lstrip("/").split("/")), anchored, folders_only))
    return rules


def included(root: Path, rules: list[Rule]) -> list[PurePosixPath]:
    """Every file under `root` the rules let through, relative to it. An excluded folder is not entered (as in git,
    nothing below it can be re-included). Symlinked folders (.venv in a worktree) count as folders."""
    kept: list[PurePosixPath] = []

    def excluded(relative: PurePosixPath, is_dir: bool) -> bool:
        return any(rule.matches(relative, is_dir) for rule in rules)

    for folder, dirs, files in os.walk(root, followlinks=True):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirs[:] = sorted(d for d in dirs if not excluded(here / d if str(here) != "." else PurePosixPath(d), True))
        for name in sorted(files):
            relative = here / name if str(here) != "." else PurePosixPath(name)
            if not excluded(relative, False):
                kept.append(relative)
    return kept


def build_package(root: Path, target: Path) -> list[PurePosixPath]:
    """Copies what a publish would ship from `root` into `target`; the files shipped."""
    files = included(root, parse((root / ".funcignore").read_text(encoding="utf-8")))
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, destination)
    return files
