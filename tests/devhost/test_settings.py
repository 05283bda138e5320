"""local.settings.json and host.json reading, in-process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from devhost.settings import (
    HostConfig,
    QueueOptions,
    SettingsError,
    apply_to_environ,
    load_host_config,
    load_local_settings,
    parse_timespan,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:05", dt.timedelta(seconds=5)),
        ("01:02:03", dt.timedelta(hours=1, minutes=2, seconds=3)),
        ("2.00:00:00", dt.timedelta(days=2)),
        ("00:00:00.5", dt.timedelta(milliseconds=500)),
        ("00:00:00.1234567", dt.timedelta(microseconds=123456)),
    ],
)
def test_timespans(text: str, expected: dt.timedelta) -> None:
    assert parse_timespan(text, where="x") == expected


@pytest.mark.parametrize("text", ["5", "00:60:00", "1:2", "soon", ""])
def test_bad_timespans_name_the_field(text: str) -> None:
    with pytest.raises(SettingsError, match=r"extensions\.queues\.visibilityTimeout"):
        parse_timespan(text, where="extensions.queues.visibilityTimeout")


def test_local_settings_fill_the_environment_without_overriding(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(
        json.dumps(
            {"Values": {"A": "from-file", "B": "from-file", "N": 3, "T": True}, "Host": {"LocalHttpPort": 7072}}
        ),
        encoding="utf-8",
    )
    settings = load_local_settings(path)
    assert settings.local_http_port == 7072
    environ = {"A": "from-env"}
    assert apply_to_environ(settings, environ) == ["B", "N", "T"]
    assert environ == {"A": "from-env", "B": "from-file", "N": "3", "T": "true"}


def test_missing_files_give_defaults(tmp_path: Path) -> None:
    assert load_local_settings(tmp_path / "none.json").values == {}
    assert load_host_config(tmp_path / "none.json") == HostConfig()


def test_host_json_queue_options(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {
                "functionTimeout": "00:05:00",
                "extensions": {
                    "http": {"routePrefix": "/v1/"},
                    "queues": {
                        "batchSize": 8,
                        "maxDequeueCount": 2,
                        "visibilityTimeout": "00:00:30",
                        "maxPollingInterval": "00:00:02",
                        "messageEncoding": "None",
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    config = load_host_config(path)
    assert config.route_prefix == "v1"
    assert config.function_timeout == dt.timedelta(minutes=5)
    assert config.queues == QueueOptions(
        batch_size=8,
        max_dequeue_count=2,
        visibility_timeout=dt.timedelta(seconds=30),
        max_polling_interval=dt.timedelta(seconds=2),
        message_encoding="none",
    )
    assert config.queues.effective_new_batch_threshold == 4


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 0}, "batchSize: must be an integer from 1 to 32"),
        ({"batchSize": 33}, "batchSize: must be an integer from 1 to 32"),
        ({"maxDequeueCount": "5"}, "maxDequeueCount"),
        ({"messageEncoding": "utf8"}, "messageEncoding: must be 'base64' or 'none'"),
        ({"maxPollingInterval": "00:00:00"}, "maxPollingInterval: must be at least"),
    ],
)
def test_bad_queue_options_name_the_field(tmp_path: Path, queues: dict, message: str) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"queues": queues}}), encoding="utf-8")
    with pytest.raises(SettingsError, match=message):
        load_host_config(path)


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"host\.json: not valid JSON"):
        load_host_config(path)
