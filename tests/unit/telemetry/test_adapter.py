"""The OpenTelemetry adapter as Application Insights would receive it: a custom event is a log record carrying
`microsoft.custom_event.name` (what Azure Monitor's exporter turns into a customEvents row) with the contract's
dimensions as its other attributes; metrics come out of the Meter API under the `cmk_guardian` meter. The exporters
here are OpenTelemetry's in-memory ones: nothing is configured globally, as the worker's configuration is not ours."""

from __future__ import annotations

import io
import logging

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.errors import InvalidSetting
from shared.telemetry import OtelTelemetry, console_wanted, contract_problem, install_console, names


@pytest.fixture
def exported():
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logging.getLogger("cmk.telemetry.test")
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    reader = InMemoryMetricReader()
    telemetry = OtelTelemetry(logger=logger, meter_provider=MeterProvider(metric_readers=[reader]))
    yield telemetry, logs, reader
    logger.removeHandler(handler)


def _metrics(reader) -> dict[str, list[tuple[dict, float]]]:
    found: dict[str, list[tuple[dict, float]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == names.METER_NAME
            for metric in scope.metrics:
                found[metric.name] = [(dict(p.attributes), p.value) for p in metric.data.data_points]
    return found


def test_a_custom_event_is_a_log_record_named_for_customevents_with_string_dimensions(exported):
    telemetry, logs, _ = exported
    telemetry.event(names.KEY_ROTATED, key="k", version="v2", previous_version="v1", trigger="timer", outcome="rotated")
    [record] = logs.get_finished_logs()
    attributes = dict(record.log_record.attributes)
    assert attributes[names.CUSTOM_EVENT_ATTRIBUTE] == names.KEY_ROTATED
    dims = {k: v for k, v in attributes.items() if k in names.EVENTS[names.KEY_ROTATED]}
    assert dims == {"key": "k", "version": "v2", "previous_version": "v1", "trigger": "timer", "outcome": "rotated"}


def test_numbers_and_missing_values_become_strings(exported):
    telemetry, logs, _ = exported
    telemetry.event(
        names.REWRAP_COMPLETED, key="k", version="v", processed=2000, succeeded=2000, failed=0,
        duration_seconds=21.5, outcome="completed",
    )  # fmt: skip
    telemetry.event(names.ALERT_SENT, alert_type="t", severity="info", key=None, outcome="sent")
    first, second = (dict(r.log_record.attributes) for r in logs.get_finished_logs())
    assert (first["processed"], first["failed"], first["duration_seconds"]) == ("2000", "0", "21.5")
    assert second["key"] == ""


def test_metrics_land_under_the_cmk_guardian_meter_with_their_attributes(exported):
    telemetry, _, reader = exported
    telemetry.count(names.KEYVAULT_CALLS, operation="unwrapKey", status="200")
    telemetry.count(names.KEYVAULT_CALLS, operation="unwrapKey", status="200")
    telemetry.count(names.KEYVAULT_THROTTLED, operation="unwrapKey")
    telemetry.count(names.REWRAP_DEKS, 100, key="k", outcome="moved")
    telemetry.gauge(names.DEKS, 7, key="k", version="v2")
    telemetry.gauge(names.FINDINGS, 1, key="k", severity="high")
    found = _metrics(reader)
    assert set(found) == set(names.METRICS)
    assert found[names.KEYVAULT_CALLS] == [({"operation": "unwrapKey", "status": "200"}, 2)]
    assert found[names.REWRAP_DEKS] == [({"key": "k", "outcome": "moved"}, 100)]
    assert found[names.DEKS] == [({"key": "k", "version": "v2"}, 7)]


def test_a_call_off_the_contract_is_never_raised_and_is_warned_about_once(exported, caplog):
    telemetry, logs, reader = exported
    with caplog.at_level(logging.WARNING, logger="cmk"):
        telemetry.count("cmk.not.a.metric", 1, key="k")
        telemetry.count("cmk.not.a.metric", 1, key="k")
        telemetry.gauge(names.KEYVAULT_CALLS, 1, operation="x", status="200")  # a counter, not a gauge
        telemetry.event("CmkGuardian.Unknown", key="k")
    assert _metrics(reader) == {}
    warnings = [r.getMessage() for r in caplog.records if r.name == "cmk"]
    assert len([w for w in warnings if "cmk.not.a.metric" in w]) == 1 and len(warnings) == 3
    assert logs.get_finished_logs() == ()  # an event off the contract is not sent


def test_the_contract_checker_names_what_is_wrong():
    assert contract_problem("event", names.VERSION_RETIRED, {"key", "version", "outcome"}) is None
    assert "takes" in contract_problem("event", names.VERSION_RETIRED, {"key", "outcome"})
    assert "not a event" in contract_problem("event", "Nope", set())
    assert "is a counter" in contract_problem("gauge", names.REWRAP_DEKS, {"key", "outcome"})


def test_the_console_is_wanted_only_locally_and_only_when_asked():
    assert console_wanted({"CMK_TELEMETRY_CONSOLE": "true"})
    assert not console_wanted({})
    assert not console_wanted({"CMK_TELEMETRY_CONSOLE": "true", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"})
    with pytest.raises(InvalidSetting, match="CMK_TELEMETRY_CONSOLE"):
        console_wanted({"CMK_TELEMETRY_CONSOLE": "yes"})


def test_the_console_is_installed_once_per_process_and_prints_the_events():
    out = io.StringIO()
    logger = logging.getLogger("cmk.telemetry.console-test")
    logger.setLevel(logging.INFO)
    first = install_console(logger, stream=out)
    second = install_console(logger, stream=out)
    assert first is second  # the same provider, and one handler: no event printed twice
    assert len(logger.handlers) in (0, 1)
    if first is not None:
        OtelTelemetry(logger=logger, meter_provider=first).event(
            names.VERSION_RETIRED, key="k", version="v1", outcome="retired"
        )
        assert out.getvalue().count(f'"body": "{names.VERSION_RETIRED} ') == 1
