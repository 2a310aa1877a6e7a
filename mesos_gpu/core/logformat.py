"""Structured logs (pure, standard library only): `JsonFormatter` writes each record as one JSON object
on one line, with `time` (ISO-8601 UTC), `level`, `logger`, `message`, every field the caller passed
through `extra=` (job_id, task_id, agent_id, attempt, state, reason, ...) and `exception` when one is
attached. `MESOS_GPU_LOG_FORMAT=json` selects it (`text`, the default, keeps the plain format).

Example::

    handler.setFormatter(JsonFormatter())
    log.info("launching task %s", task_id, extra={"job_id": "train-1a2b3c4d", "task_id": task_id})
    # {"time": "2026-12-04T12:40:07.123Z", "level": "INFO", "logger": "mesos_gpu.driver.eventlog",
    #  "message": "launching task ...", "job_id": "train-1a2b3c4d", "task_id": "..."}
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["TEXT_FORMAT", "JsonFormatter", "formatter_for"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has: whatever else a record carries came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}
# The formatter's own keys: an `extra` field of the same name is kept under "field.<name>".
_OWN = ("time", "level", "logger", "message", "exception", "stack")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, one line each (newlines in messages are escaped, never written)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[f"field.{key}" if key in _OWN else key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: no raw U+2028 or similar that a line-based reader would split on
        return json.dumps(out, ensure_ascii=True, default=str)


def iso_utc(seconds: float) -> str:
    """`seconds` since the epoch as ISO-8601 UTC with milliseconds: `2026-12-04T12:40:07.123Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of a `MESOS_GPU_LOG_FORMAT` value: "json" or "text" (ValueError otherwise)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be text or json, not {log_format!r}")
