"""docs/inventory.md names exactly the fields the validator accepts, at every level, and the offline check command it
documents validates a file as the app does."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from shared.inventory import InventoryError, parse_inventory
from shared.inventory.check import main as check_main
from tests.docs.tables import rows

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "inventory.md"
REFERENCE = ROOT / "inventory" / "reference.yaml"
PROBE = "qqqqqqqqqqqq"  # close to no field name, so the validator lists every field instead of suggesting one


def accepted_fields() -> set[str]:
    """Every field path the validator accepts: an unknown field at each level makes it list the level's fields."""
    data = yaml.safe_load(REFERENCE.read_text())
    probed = copy.deepcopy(data)
    key = probed["keys"][0]
    dek_table = next(c for c in key["consumers"] if c["kind"] == "dek-table")
    for section in (
        probed,
        probed["policy"],
        probed["break_glass"][0],
        probed["vaults"][0],
        key,
        key["identity"],
        key["rotation"],
        key["consumers"][0],
        dek_table["options"],
    ):
        section[PROBE] = 1
    with pytest.raises(InventoryError) as err:
        parse_inventory(probed, source="reference.yaml")
    fields = set()
    for problem in err.value.problems:
        found = re.fullmatch(
            rf"reference\.yaml: (?:(.*)\.)?{PROBE}: unknown (?:field|option) \(expected (?:one of: )?(.+)\)", problem
        )
        assert found, f"not a probe's answer (the message changed?): {problem}"
        level = re.sub(r"\[[^\]]*\]", "[]", found.group(1) or "")
        names = re.split(r", | or ", found.group(2))
        fields |= {f"{level}.{name}" if level else name for name in names}
    assert len(err.value.problems) == 9, err.value.problems
    return fields


def test_the_field_table_lists_every_field_the_validator_accepts_and_nothing_else():
    documented = [row[0].strip("`") for row in rows(DOC, "field")]
    assert len(documented) == len(set(documented)), "a field is listed twice"
    assert set(documented) == accepted_fields()


def test_the_reference_inventory_points_at_the_field_reference_and_it_exists():
    assert "docs/inventory.md" in REFERENCE.read_text()
    assert DOC.is_file()


def test_the_offline_check_accepts_the_reference_and_names_every_problem_of_a_bad_file(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert check_main([str(REFERENCE), "--no-env"], stdout=out, stderr=err) == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["valid"] is True and [k["name"] for k in summary["keys"]] == [
        "aks-encryption-key",
        "mysql-encryption-key",
    ]

    bad = tmp_path / "bad.yaml"
    bad.write_text(REFERENCE.read_text().replace("rotate_after: P90D", "rotate_afer: P90D", 1))
    out, err = io.StringIO(), io.StringIO()
    code = check_main([str(bad), "--no-env", "--set", "CMK_MODE=bogus"], stdout=out, stderr=err)
    assert code == 1 and out.getvalue() == ""
    text = err.getvalue()
    assert "mode: expected one of enforce, audit, got 'bogus'" in text
    assert "keys[aks-encryption-key].rotation.rotate_afer: unknown field (did you mean 'rotate_after'?)" in text


def test_the_offline_check_makes_the_apps_start_up_check_of_the_dek_table(tmp_path):
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(REFERENCE.read_text().replace("${CMK_DEK_TABLE:-cmkdeks}", "cmkdeks"))
    err = io.StringIO()
    code = check_main([str(fixed), "--no-env", "--set", "CMK_DEK_TABLE=othertable"], stdout=io.StringIO(), stderr=err)
    assert code == 1
    assert "consumers[1].options.table: 'cmkdeks' is not the table the app reads" in err.getvalue()
