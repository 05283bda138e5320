"""The DEK registry and the re-wrap budget as the app builds them: their tables from settings, and the DEK table
setting the same one the inventory's dek-table consumers name."""

from __future__ import annotations

import re

import pytest

from shared.azure.budget import TableRewrapBudget
from shared.azure.dekstore import TableDekStore
from shared.bootstrap import Container
from shared.errors import InvalidSetting
from shared.inventory import InventoryError, load_inventory
from shared.model import ConsumerKind
from shared.ports import DekStore, RewrapBudget
from shared.settings import Settings
from tests.support.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from tests.unit.conftest import ROOT

CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
    f"TableEndpoint=http://127.0.0.1:9/{ACCOUNT_NAME};"
)


def test_the_tables_default_and_bad_names_name_their_setting():
    s = Settings.from_env({})
    assert (s.dek_table, s.budget_table) == ("cmkdeks", "cmkbudget")
    for setting in ("CMK_DEK_TABLE", "CMK_BUDGET_TABLE"):
        with pytest.raises(InvalidSetting) as err:
            Settings.from_env({setting: "cmk-deks"})
        assert err.value.field == setting


def test_the_container_builds_both_ports_once_on_their_tables():
    env = {"AzureWebJobsStorage": CONNECTION, "CMK_DEK_TABLE": "deks2026"}
    container = Container(Settings.from_env(env))
    assert isinstance(container.dekstore, TableDekStore) and container.dekstore is container.dekstore
    assert isinstance(container.budget, TableRewrapBudget) and container.budget is container.budget
    assert isinstance(container.dekstore, DekStore) and isinstance(container.budget, RewrapBudget)
    assert container.dekstore._table.name == "deks2026" and container.budget._table.name == "cmkbudget"
    assert {"dekstore", "budget"} <= Container.ports()


def test_the_dek_table_setting_is_the_table_the_inventory_names():
    env = {"CMK_DEK_TABLE": "deks2026"}
    inventory = load_inventory(ROOT / "inventory" / "reference.yaml", env)
    tables = {c.options["table"] for k in inventory.keys for c in k.consumers if c.kind is ConsumerKind.DEK_TABLE}
    assert tables == {Settings.from_env(env).dek_table}


def test_a_dek_table_the_app_does_not_read_is_refused_when_the_inventory_loads(tmp_path):
    """H4: the inventory says `table: appdeks` while the app's registry is CMK_DEK_TABLE (cmkdeks). Accepting it
    would make the retirement guard count zero DEKs on every old version and disable them under live DEKs."""
    text = (ROOT / "inventory" / "reference.yaml").read_text(encoding="utf-8")
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace("table: ${CMK_DEK_TABLE:-cmkdeks}", "table: appdeks", 1), encoding="utf-8")
    container = Container(Settings.from_env({"CMK_INVENTORY_PATH": str(path)}))
    with pytest.raises(InventoryError) as err:
        container.inventory  # noqa: B018 - building it is the check
    [problem] = err.value.problems
    assert re.search(r"keys\[[^]]+\]\.consumers\[\d+\]\.options\.table", problem), problem
    assert "appdeks" in problem and "CMK_DEK_TABLE" in problem and "cmkdeks" in problem


def test_dek_tables_that_match_the_setting_load():
    container = Container(Settings.from_env({"CMK_DEK_TABLE": "deks2026"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CMK_DEK_TABLE", "deks2026")
        assert container.inventory.keys
