"""The layout shows the architecture (issue 17): a package per capability in functions/ and shared/, each package's
`__init__` naming what the others may use, and no module too long to read in one sitting."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
MAX_MODULES = {"functions": 12, "shared": 20}
# shared/azure holds the adapters, one per port and backend; bootstrap is its one importer, module by module.
NOT_CAPABILITIES = {"shared.azure"}
# Imported by its one route when it runs, not by its package: importing the app does not build the document.
LOADED_ON_USE = {"functions.api.openapi.openapi_document"}


def _packages() -> list[str]:
    return sorted(
        f"{top}.{init.parent.name}"
        for top in MAX_MODULES
        for init in (ROOT / top).glob("*/__init__.py")
        if f"{top}.{init.parent.name}" not in NOT_CAPABILITIES
    )


@pytest.mark.parametrize("top", sorted(MAX_MODULES))
def test_few_modules_sit_directly_in_each_top_folder(top):
    modules = sorted(p.name for p in (ROOT / top).glob("*.py"))
    assert len(modules) <= MAX_MODULES[top], modules


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for top in MAX_MODULES
        for p in (ROOT / top).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize("package", _packages())
def test_each_package_says_what_it_holds_and_exports_names_it_defines(package):
    module = importlib.import_module(package)
    assert (module.__doc__ or "").strip(), f"{package}/__init__.py has no docstring"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_the_app_uses_another_package_only_through_what_it_exports():
    """A module outside a package imports from it only names in the package's __all__ (tests may reach further)."""
    exports = {package: set(importlib.import_module(package).__all__) for package in _packages()}
    sources = [ROOT / "function_app.py", *(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]
    sources += [*(ROOT / "bench").rglob("*.py"), *(ROOT / "localrun").rglob("*.py")]
    outside = []
    for source in sources:
        importer = ".".join(source.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            package = next((p for p in exports if node.module == p or node.module.startswith(p + ".")), None)
            if package is None or importer.startswith(package + "."):
                continue
            outside += [f"{importer}: {node.module}.{a.name}" for a in node.names if a.name not in exports[package]]
    outside = [line for line in outside if line.split(": ")[1] not in LOADED_ON_USE]
    assert outside == [], "\n".join(outside)
