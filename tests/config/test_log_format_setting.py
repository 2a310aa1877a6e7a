"""MESOS_GPU_LOG_FORMAT: text (default) or json, checked with a clear error; the formatter each selects."""

from __future__ import annotations

import logging

import pytest

from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.logformat import JsonFormatter, formatter_for
from mesos_gpu.scheduler_main import configure_logging, log_format_of


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "text"), ("", "text"), ("text", "text"), ("json", "json"), (" JSON ", "json"), ("Text", "text")],
)
def test_the_log_format_is_read_case_insensitively_and_defaults_to_text(
        raw: str | None, expected: str) -> None:
    env = {} if raw is None else {ENV.LOG_FORMAT: raw}
    assert SchedulerSettings.from_env(env).log_format == expected
    assert log_format_of(env) == expected


@pytest.mark.parametrize("raw", ["yaml", "logfmt", "jsonl", "1"])
def test_an_unknown_log_format_is_refused_naming_the_variable_and_the_choices(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SchedulerSettings.from_env({ENV.LOG_FORMAT: raw})
    [error] = caught.value.errors
    assert error.path == f"/{ENV.LOG_FORMAT}"
    assert "text, json" in error.message


def test_the_variable_is_one_the_settings_read() -> None:
    assert ENV.LOG_FORMAT == "MESOS_GPU_LOG_FORMAT"
    assert ENV.LOG_FORMAT in ENV.names()


def test_each_format_has_its_formatter() -> None:
    assert isinstance(formatter_for("json"), JsonFormatter)
    text = formatter_for("text")
    assert not isinstance(text, JsonFormatter)
    record = logging.LogRecord("mesos_gpu.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    assert text.format(record).endswith(" INFO mesos_gpu.x: hello there")
    with pytest.raises(ValueError, match="text or json"):
        formatter_for("xml")


def test_configure_logging_installs_the_chosen_formatter_and_keeps_kazoo_debug_out() -> None:
    root, kazoo = logging.getLogger(), logging.getLogger("kazoo")
    saved_handlers, saved_level, saved_kazoo = root.handlers[:], root.level, kazoo.level
    root.handlers = []
    try:
        configure_logging("DEBUG", "json")
        [handler] = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert root.level == logging.DEBUG
        # kazoo's DEBUG lines show every znode written (job records, env values included)
        assert not logging.getLogger("kazoo.client").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        kazoo.setLevel(saved_kazoo)
