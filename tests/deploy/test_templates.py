"""The templates are well formed without a Bicep compiler: every .bicep file parses (pycep-parser), checkov finds
no failed check and every skip in infra/ is used and says why, and azure.yaml, the parameter file, the hooks and
.funcignore fit together. azd's own deployment stays in the app's resource group (docs/deploy.md says why)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.templates import INFRA, ROOT, bicep_files, body, parse
from tests.docs.tables import rows

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
SKIP = re.compile(r"//\s*checkov:skip=(\w+):(.*)$", re.MULTILINE)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path):
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_the_required_files_exist():
    for name in ("azure.yaml", "infra/main.bicep", "infra/main.parameters.json", "infra/connect.bicep"):
        assert (ROOT / name).is_file(), name


def checkov_reports() -> list[dict]:
    """`checkov -d infra`, every framework it applies (one JSON report each; a single one is not in a list)."""
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: run scripts/setup (it installs checkov in its own venv)")
    run = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    reports = json.loads(run.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_finds_no_failed_check_and_every_skip_is_used_and_justified():
    reports = checkov_reports()
    assert "bicep" in {r["check_type"] for r in reports}
    used = set()
    for report in reports:
        results = report["results"]
        failed = [(c["check_id"], c["file_path"], c["resource"]) for c in results.get("failed_checks", [])]
        assert report["summary"]["failed"] == 0, failed
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        used |= {(c["check_id"], c["file_path"].lstrip("/")) for c in results.get("skipped_checks", [])}
    bicep = next(r for r in reports if r["check_type"] == "bicep")
    assert bicep["summary"]["passed"] > 0
    for path in bicep_files():
        for check, reason in SKIP.findall(path.read_text()):
            where = path.relative_to(INFRA).as_posix()
            assert len(reason.strip()) >= 20, f"{where}: the skip of {check} needs a reason"
            assert (check, where) in used, f"{where}: {check} is skipped but checkov does not report it (stale skip)"


def test_azure_yaml_deploys_the_app_from_the_root_with_its_hooks():
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (service,) = config["services"].values()
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert set(config["hooks"]) == {"preprovision", "postdeploy", "predown"}
    for hook in config["hooks"].values():
        script = ROOT / hook["posix"]["run"]
        assert script.is_file() and script.stat().st_mode & 0o111, script
        subprocess.run(["sh", "-n", str(script)], check=True)


def test_the_parameter_file_maps_every_parameter_main_bicep_needs_and_no_other():
    declared = parse(INFRA / "main.bicep")["parameters"]
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(mapped) <= set(declared)
    assert {name for name, p in declared.items() if p.get("default") is None} <= set(mapped)
    for name, entry in mapped.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), name


def test_azd_deploys_nothing_outside_the_apps_resource_group():
    main = parse(INFRA / "main.bicep")
    assert [r["type"] for r in main["resources"].values()] == ["Microsoft.Resources/resourceGroups"]
    assert {body(m)["scope"] for m in main["modules"].values()} == {"rg"}


def test_the_postdeploy_hook_passes_connect_bicep_every_parameter_it_declares():
    declared = set(parse(INFRA / "connect.bicep")["parameters"])
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert "--template-file infra/connect.bicep" in hook
    passed = set(re.findall(r"\b([a-zA-Z]+)=\"\$", hook))
    assert passed == declared
    assert "--action-on-unmanage deleteAll" in hook
    assert "az stack sub delete" in (INFRA / "hooks" / "predown.sh").read_text()
    for hook_name in ("preprovision.sh", "postdeploy.sh"):  # the environment is checked before anything is deployed
        assert '"$python" infra/hooks/check_env.py' in (INFRA / "hooks" / hook_name).read_text()


def test_the_templates_do_not_ship_with_the_app():
    ignored = (ROOT / ".funcignore").read_text().splitlines()
    assert {"/infra/", "/azure.yaml", "/.tools/"} <= set(ignored)


def test_the_docs_list_exactly_the_environment_values_the_templates_take():
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"].values()
    names = {re.match(r"\$\{([A-Z_]+)", entry["value"]).group(1) for entry in mapped}
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    names |= set(re.findall(r"=\"\$\{?([A-Z_]+)", hook[hook.index("--parameters") :]))
    names -= {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_FUNCTION_APP_ID", "CMK_APP_PRINCIPAL_ID"}  # azd's, outputs
    documented = {
        name
        for row in rows(ROOT / "docs" / "deploy.md", "environment value")
        for name in re.findall(r"`([A-Z_]+)`", row[0])
    }
    assert documented == names


def test_azd_finds_the_function_app_by_its_service_tag():
    (service,) = yaml.safe_load((ROOT / "azure.yaml").read_text())["services"]
    tagged = re.findall(r"'azd-service-name': '([\w-]+)'", (INFRA / "main.bicep").read_text())
    assert tagged == [service]
