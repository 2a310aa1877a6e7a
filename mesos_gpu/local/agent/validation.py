"""The v1 executor Call's checks, pure (no I/O): the JSON -> `executor::Call` conversion errors (stout's
protobuf parse) and `executor::call::validate` (src/common/validation.cpp), with Mesos' texts.

Both return the problem as a string, or None when the call passes:

    convert_executor_call({"type": "HEARTBEAT"})  # "Missing required fields: executor_id, framework_id"
"""

from __future__ import annotations

import base64
from typing import Any

from mesos_gpu.core.wire import json_kind

EXECUTOR_CALL_TYPES = ("UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT")


def convert_executor_call(call: object) -> str | None:
    """The JSON -> executor::Call conversion errors Mesos reports (stout protobuf parse), trimmed."""
    if not isinstance(call, dict):
        return "Expecting a JSON object"
    missing = [name for name in ("executor_id", "framework_id") if name not in call]
    for name in ("executor_id", "framework_id"):
        if name in call and not _is_id(call[name]):
            if not isinstance(call[name], dict):
                return _not_expecting(call[name], name)
            missing.append(f"{name}.value")
    if "type" in call and not isinstance(call["type"], str):
        return _not_expecting(call["type"], "type")
    problem = _update_problem(call.get("update"), missing) or _message_problem(call.get("message"), missing)
    if problem is not None:
        return problem
    subscribe = call.get("subscribe")
    if subscribe is not None and not isinstance(subscribe, dict):
        return _not_expecting(subscribe, "subscribe")
    if missing:
        return "Missing required fields: " + ", ".join(missing)
    return None


def _update_problem(update: object, missing: list[str]) -> str | None:
    """Add the update's missing required fields to `missing`; return a type or bytes decoding error."""
    if update is None:
        return None
    if not isinstance(update, dict):
        return _not_expecting(update, "update")
    status = update.get("status")
    if not isinstance(status, dict):
        missing.append("update.status")
        return None
    if not _is_id(status.get("task_id")):
        missing.append("update.status.task_id")
    if not isinstance(status.get("state"), str):
        missing.append("update.status.state")
    if "uuid" in status and not _is_b64(status["uuid"]):
        return "Failed to base64 decode bytes field 'uuid'"
    return None


def _message_problem(message: object, missing: list[str]) -> str | None:
    """Add the message's missing required fields to `missing`; return a type or bytes decoding error."""
    if message is None:
        return None
    if not isinstance(message, dict):
        return _not_expecting(message, "message")
    if "data" not in message:
        missing.append("message.data")
    elif not _is_b64(message["data"]):
        return "Failed to base64 decode bytes field 'data'"
    return None


def validate_executor_call(call: dict[str, Any]) -> str | None:
    """src/common/validation.cpp executor::call::validate (on a converted call)."""
    call_type = call.get("type")
    if call_type not in EXECUTOR_CALL_TYPES:
        return "Expecting 'type' to be present"  # an unknown enum name of an optional field is dropped
    if call_type == "SUBSCRIBE" and "subscribe" not in call:
        return "Expecting 'subscribe' to be present"
    if call_type == "UPDATE":
        if "update" not in call:
            return "Expecting 'update' to be present"
        return _validate_update(call)
    if call_type == "MESSAGE" and "message" not in call:
        return "Expecting 'message' to be present"
    return None


def _validate_update(call: dict[str, Any]) -> str | None:
    executor_id = call["executor_id"]["value"]
    framework_id = call["framework_id"]["value"]
    status = call["update"]["status"]
    if "uuid" not in status:
        return "Expecting 'uuid' to be present"
    raw = base64.b64decode(status["uuid"])
    if len(raw) != 16 or not 1 <= (raw[6] >> 4) <= 5:
        return "Not a valid UUID"
    if "executor_id" in status and status["executor_id"].get("value") != executor_id:
        return (
            f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
            f"{status['executor_id'].get('value')}"
        )
    if status.get("source") != "SOURCE_EXECUTOR":
        return (
            f"Received Call from executor {executor_id} of framework {framework_id} with invalid source, "
            "expecting 'SOURCE_EXECUTOR'"
        )
    if status.get("state") == "TASK_STAGING":
        return (
            f"Received TASK_STAGING from executor {executor_id} of framework {framework_id} "
            "which is not allowed"
        )
    return None


def _not_expecting(value: object, field: str) -> str:
    return f"Not expecting a JSON {json_kind(value)} for field '{field}'"


def _is_id(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("value"), str)


def _is_b64(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True
