"""The Workbook (infra/workbook/) is valid, deployed by the template against the app's Application Insights, and
queries only the telemetry the app sends: the custom event and metric names of the telemetry contract, and only
their dimensions, so a renamed event fails here instead of leaving an operator's chart silently empty."""

from __future__ import annotations

import json
import re

from shared.telemetry.names import EVENTS, METRICS
from tests.deploy.templates import INFRA, body, parse, resources

WORKBOOK = INFRA / "workbook" / "cmk-guardian.workbook.json"


def queries() -> list[str]:
    document = json.loads(WORKBOOK.read_text())
    found = []

    def walk(items: list[dict]) -> None:
        for item in items:
            content = item.get("content", {})
            if "query" in content:
                found.append(content["query"])
            for parameter in content.get("parameters", []):
                if "query" in parameter:
                    found.append(parameter["query"])
            walk(content.get("items", []))

    walk(document["items"])
    return found


def test_the_workbook_is_a_workbook():
    document = json.loads(WORKBOOK.read_text())
    assert document["version"] == "Notebook/1.0"
    assert len(queries()) >= 10
    for item in document["items"]:
        if item["type"] == 3:
            assert item["content"]["resourceType"] == "microsoft.insights/components"
            assert item["content"]["timeContextFromParameter"] == "TimeRange"


def test_the_template_deploys_it_on_the_apps_application_insights():
    path = INFRA / "app" / "monitoring.bicep"
    (workbook,) = resources(path, "Microsoft.Insights/workbooks").values()
    props = body(workbook)["properties"]
    loaded = props["serializedData"]["function"]
    assert loaded["type"] == "load_text_content"
    assert (path.parent / loaded["parameters"]["file_path"]).resolve() == WORKBOOK
    assert props["sourceId"]["operator"]["operands"]["operand_1"] == "appInsights"
    assert "monitoring" in parse(INFRA / "main.bicep")["modules"]


def test_it_queries_only_the_telemetry_contract_and_all_of_it():
    text = "\n".join(queries())
    events = set(re.findall(r"'(CmkGuardian\.\w+)'", text))
    metrics = set(re.findall(r"'(cmk\.[a-z.]+)'", text))
    assert events <= set(EVENTS), f"not sent by the app: {sorted(events - set(EVENTS))}"
    assert metrics <= set(METRICS), f"not sent by the app: {sorted(metrics - set(METRICS))}"
    assert events == set(EVENTS) and metrics == set(METRICS), "a contract name no chart shows"
    dimensions = set(re.findall(r"customDimensions\.(\w+)", text))
    known = {d for dims in EVENTS.values() for d in dims} | {d for _, dims in METRICS.values() for d in dims}
    assert dimensions <= known, f"not a dimension the app sends: {sorted(dimensions - known)}"


def test_each_query_names_only_dimensions_of_what_it_reads():
    for query in queries():
        names = set(re.findall(r"'(CmkGuardian\.\w+|cmk\.[a-z.]+)'", query))
        if not names:
            continue
        allowed = {d for n in names for d in (EVENTS.get(n) or METRICS[n][1])}
        used = set(re.findall(r"customDimensions\.(\w+)", query))
        assert used <= allowed, (sorted(names), sorted(used - allowed))
