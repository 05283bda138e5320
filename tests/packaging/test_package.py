"""The deployment package, built from .funcignore as a Core Tools publish builds it, installed from requirements.txt
alone in a clean venv: the app imports, every function indexes with its bindings, nothing of the development side
ships, and cold start still loads no SDK client. One package and one venv for the module (the install takes a while).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tests.packaging.funcignore import UnsupportedPattern, build_package, parse
from tests.support.app_imports import modules_loaded_by_import, sdk_clients_among
from tests.unit.test_function_app import EXPECTED

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# What the app is: anything else at the top of the package is something a publish should not ship (or the app grew
# a folder: then add it here, deliberately).
APP_TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", "functions", "shared", "inventory"}
NEVER_SHIPPED = ("tests", "emulators", "devhost", "localrun", "bench", "scripts", ".venv", "node_modules", ".local")

INDEX_SCRIPT = """
import json, function_app
print(json.dumps({f.get_function_name(): json.loads(f.get_function_json()) for f in function_app.app.get_functions()}))
"""


@dataclass(frozen=True)
class Deployment:
    package: Path
    files: list[PurePosixPath]
    python: str

    def env(self) -> dict[str, str]:
        """Only what a worker would have: no PYTHONPATH into the checkout, no app settings from this shell."""
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.package.parent)}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    base = tmp_path_factory.mktemp("deployment")
    package = base / "wwwroot"
    files = build_package(ROOT, package)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-r", str(package / "requirements.txt")],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return Deployment(package, files, python)


def test_the_package_holds_the_app_and_nothing_else(deployment: Deployment) -> None:
    assert {f.parts[0] for f in deployment.files} == APP_TOP_LEVEL
    assert [f for f in deployment.files if f.parts[0] in NEVER_SHIPPED] == []
    assert [f for f in deployment.files if f.suffix in (".pyc", ".pem", ".key", ".pfx")] == []
    assert [f for f in deployment.files if f.name.startswith("local.settings")] == []
    assert PurePosixPath("inventory/reference.yaml") in deployment.files  # the default CMK_INVENTORY_PATH


def test_every_function_indexes_from_the_package_alone(deployment: Deployment) -> None:
    result = subprocess.run(
        [deployment.python, "-c", INDEX_SCRIPT],
        cwd=deployment.package,
        env=deployment.env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    functions = json.loads(result.stdout)
    assert set(functions) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        trigger = next(b for b in functions[name]["bindings"] if b["direction"] == "IN")
        assert {field: trigger.get(field) for field in expected} == expected, name


def test_the_package_imports_from_itself_and_its_venv_only(deployment: Deployment) -> None:
    script = "import function_app, sys; print(function_app.__file__); print(sys.prefix)"
    out = subprocess.run(
        [deployment.python, "-c", script], cwd=deployment.package, env=deployment.env(), capture_output=True, text=True
    )
    app_file, prefix = out.stdout.split()
    assert Path(app_file).parent == deployment.package
    assert Path(prefix) != Path(sys.prefix)


def test_cold_start_in_the_package_loads_no_sdk_client(deployment: Deployment) -> None:
    modules = modules_loaded_by_import(deployment.python, deployment.package, env=deployment.env())
    assert "function_app" in modules
    assert sdk_clients_among(modules) == []


def test_the_packager_refuses_gitignore_syntax_it_does_not_model() -> None:
    for line in ("!keep.py", "docs/**/x", "a\\ b", "[ab].py"):
        with pytest.raises(UnsupportedPattern):
            parse(line)
