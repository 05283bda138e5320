"""The local cloud's layout stays readable: one concept per module (none over 400 lines in emulators/, devhost/ and
localrun/), and the emulators stand apart from the app they emulate Azure for (no process)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
APP_PACKAGES = ("functions", "shared", "function_app", "devhost", "localrun")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("module", _modules("emulators", "devhost", "localrun"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_400_lines(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.relative_to(ROOT)}: {lines} lines; split it by concept (at most {MAX_LINES})"


def _imported(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", _modules("emulators"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_emulators_import_nothing_from_the_app(module: Path) -> None:
    from_app = sorted(n for n in _imported(module) if n.split(".")[0] in APP_PACKAGES)
    assert not from_app, f"{module.relative_to(ROOT)} imports {from_app}: the emulators stand alone"
