"""`JsonFormatter`: one JSON object per line with time (ISO-8601 UTC), level, logger, message, the
`extra=` fields, and an exception as a field."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.logformat import JsonFormatter, iso_utc


def record(message: str, *args: Any, level: int = logging.INFO, extra: dict[str, Any] | None = None,
           exc_info: Any = None, name: str = "mesos_gpu.test") -> logging.LogRecord:
    made = logging.getLogger(name).makeRecord(name, level, __file__, 7, message, args, exc_info, extra=extra)
    made.created = 1_796_388_007.123456  # 2026-12-04T12:40:07.123Z
    return made


def formatted(made: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(made)
    assert "\n" not in line and "\r" not in line
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


CASES = [
    pytest.param(record("launching %s", "t1"), {"message": "launching t1"}, id="args-interpolated"),
    pytest.param(record("x", level=logging.WARNING), {"level": "WARNING"}, id="level-name"),
    pytest.param(record("x", name="mesos_gpu.driver.eventlog"), {"logger": "mesos_gpu.driver.eventlog"},
                 id="logger-name"),
    pytest.param(record("x", extra={"job_id": "j-1", "attempt": 2, "agent_id": None}),
                 {"job_id": "j-1", "attempt": 2, "agent_id": None}, id="extra-fields"),
    pytest.param(record("x", extra={"gpus": 0.5, "ok": True}), {"gpus": 0.5, "ok": True}, id="typed-fields"),
    pytest.param(record('quote " back \\ nl \n tab \t'), {"message": 'quote " back \\ nl \n tab \t'},
                 id="escaping"),
    pytest.param(record("line\u2028sep é"), {"message": "line\u2028sep é"}, id="unicode"),
    pytest.param(record("x", extra={"level_of": "a", "time_zone": "b"}), {"level_of": "a"},
                 id="similar-names"),
    pytest.param(record("x", extra={"time": "mine"}),
                 {"field.time": "mine", "time": "2026-12-04T12:40:07.123Z"}, id="own-key-not-overwritten"),
    pytest.param(record("x", extra={"obj": object}), {"obj": str(object)}, id="unserialisable-as-str"),
]


@pytest.mark.parametrize(("made", "expected"), CASES)
def test_each_record_is_one_json_object_with_its_fields(
        made: logging.LogRecord, expected: dict[str, Any]) -> None:
    out = formatted(made)
    assert {key: out.get(key) for key in expected} == expected
    assert list(out)[:4] == ["time", "level", "logger", "message"]
    assert out["time"] == "2026-12-04T12:40:07.123Z"


def test_only_the_extra_fields_are_added_to_the_standard_ones() -> None:
    out = formatted(record("x", extra={"task_id": "t"}))
    assert set(out) == {"time", "level", "logger", "message", "task_id"}


def test_an_exception_is_a_field_with_its_traceback_on_the_same_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        made = record("failed", level=logging.ERROR, exc_info=sys.exc_info())
    out = formatted(made)
    assert out["message"] == "failed"
    assert out["exception"].startswith("Traceback (most recent call last):")
    assert out["exception"].endswith("RuntimeError: boom\nsecond line")


def test_a_stack_is_a_field() -> None:
    made = record("here")
    made.stack_info = "Stack (most recent call last):\n  File x"
    assert formatted(made)["stack"] == "Stack (most recent call last):\n  File x"


@given(st.text(), st.dictionaries(st.from_regex(r"\A[a-z][a-z_]{0,11}\Z"), st.text(), max_size=4))
def test_any_message_and_fields_make_one_parseable_ascii_line(message: str, extra: dict[str, str]) -> None:
    extra = {k: v for k, v in extra.items() if k not in ("message", "asctime") and k not in vars(record("x"))}
    line = JsonFormatter().format(record("%s", message, extra=extra))
    assert line.isascii() and len(line.splitlines()) == 1
    out = json.loads(line)
    assert out["message"] == message
    own = ("time", "level", "logger", "exception", "stack")
    assert all(out[k] == v for k, v in extra.items() if k not in own)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "1970-01-01T00:00:00.000Z"), (1_796_388_007.9999, "2026-12-04T12:40:07.999Z"),
])
def test_times_are_iso_8601_utc_with_milliseconds(seconds: float, text: str) -> None:
    assert iso_utc(seconds) == text
    assert datetime.fromisoformat(text).utcoffset() is not None
