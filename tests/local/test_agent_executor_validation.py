"""The executor Call's pure checks (local.agent.validation) and the body decoding of the executor API
(executor_api.decode_executor_call), as tables of Mesos' texts; the HTTP answers are in
test_agent_executor_api."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from mesos_gpu.local.agent.executor_api import accepts_json, decode_executor_call
from mesos_gpu.local.agent.validation import convert_executor_call, validate_executor_call
from mesos_gpu.local.protocol import HttpError

IDS = {"executor_id": {"value": "ex1"}, "framework_id": {"value": "fw"}}
UUID = base64.b64encode(uuid.uuid4().bytes).decode()


def status(**extra: object) -> dict:
    return {
        "task_id": {"value": "t1"},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": UUID,
        **extra,
    }


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ([], "Expecting a JSON object"),
        ({"type": "HEARTBEAT"}, "Missing required fields: executor_id, framework_id"),
        ({**IDS, "executor_id": "ex1"}, "Not expecting a JSON string for field 'executor_id'"),
        ({**IDS, "framework_id": {}}, "Missing required fields: framework_id.value"),
        ({**IDS, "type": 3}, "Not expecting a JSON number for field 'type'"),
        ({**IDS, "update": []}, "Not expecting a JSON array for field 'update'"),
        ({**IDS, "update": {}}, "Missing required fields: update.status"),
        (
            {**IDS, "update": {"status": {}}},
            "Missing required fields: update.status.task_id, update.status.state",
        ),
        ({**IDS, "update": {"status": status(uuid="!")}}, "Failed to base64 decode bytes field 'uuid'"),
        ({**IDS, "message": True}, "Not expecting a JSON boolean for field 'message'"),
        ({**IDS, "message": {}}, "Missing required fields: message.data"),
        ({**IDS, "message": {"data": "%"}}, "Failed to base64 decode bytes field 'data'"),
        ({**IDS, "subscribe": None}, None),
        ({**IDS, "subscribe": "x"}, "Not expecting a JSON string for field 'subscribe'"),
        # the update's problems come before the message's and the subscribe's, as stout walks the fields
        (
            {**IDS, "update": {"status": status(uuid="!")}, "message": 1},
            "Failed to base64 decode bytes field 'uuid'",
        ),
        ({**IDS, "type": "HEARTBEAT"}, None),
    ],
)
def test_conversion_errors(call: object, problem: str | None) -> None:
    assert convert_executor_call(call) == problem


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ({**IDS}, "Expecting 'type' to be present"),
        ({**IDS, "type": "LAUNCH"}, "Expecting 'type' to be present"),
        ({**IDS, "type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        ({**IDS, "type": "SUBSCRIBE", "subscribe": {}}, None),
        ({**IDS, "type": "MESSAGE"}, "Expecting 'message' to be present"),
        ({**IDS, "type": "UPDATE"}, "Expecting 'update' to be present"),
        ({**IDS, "type": "UPDATE", "update": {"status": status()}}, None),
        (
            {
                **IDS,
                "type": "UPDATE",
                "update": {"status": {k: v for k, v in status().items() if k != "uuid"}},
            },
            "Expecting 'uuid' to be present",
        ),
        ({**IDS, "type": "UPDATE", "update": {"status": status(uuid="c2hvcnQ=")}}, "Not a valid UUID"),
        (
            {**IDS, "type": "UPDATE", "update": {"status": status(executor_id={"value": "zz"})}},
            "ExecutorID in Call: ex1 does not match ExecutorID in TaskStatus: zz",
        ),
        (
            {**IDS, "type": "UPDATE", "update": {"status": status(source="SOURCE_AGENT")}},
            "Received Call from executor ex1 of framework fw with invalid source, "
            "expecting 'SOURCE_EXECUTOR'",
        ),
        (
            {**IDS, "type": "UPDATE", "update": {"status": status(state="TASK_STAGING")}},
            "Received TASK_STAGING from executor ex1 of framework fw which is not allowed",
        ),
        ({**IDS, "type": "HEARTBEAT"}, None),
    ],
)
def test_validation_errors(call: dict, problem: str | None) -> None:
    assert convert_executor_call(call) is None
    assert validate_executor_call(call) == problem


@pytest.mark.parametrize(
    ("content_type", "body", "code", "text"),
    [
        (None, b"{}", 400, "Expecting 'Content-Type' to be present"),
        ("text/plain", b"{}", 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"),
        ("application/x-protobuf", b"", 400, "Failed to parse body into Call protobuf"),  # required fields
        ("application/x-protobuf", b"{}", 400, "Failed to parse body into Call protobuf"),
        ("application/json", b"{nope", 400, "Failed to parse body into JSON: "),
        (
            "application/json",
            b"[]",
            400,
            "Failed to convert JSON into Call protobuf: Expecting a JSON object",
        ),
    ],
)
def test_decode_refuses_with_mesos_codes(content_type: str | None, body: bytes, code: int, text: str) -> None:
    with pytest.raises(HttpError) as caught:
        decode_executor_call(content_type, body)
    assert caught.value.code == code and caught.value.text.startswith(text)


def test_decode_json_call() -> None:
    call = {**IDS, "type": "HEARTBEAT"}
    assert decode_executor_call("application/json", json.dumps(call).encode()) == call


@pytest.mark.parametrize(
    ("accept", "accepted"),
    [
        (None, True),
        ("application/json", True),
        ("application/x-protobuf;q=0.5", True),
        ("*/*", True),
        ("text/html, application/*", True),
        ("application/json;q=0", False),
        ("application/xml", False),
    ],
)
def test_accept_header(accept: str | None, accepted: bool) -> None:
    assert accepts_json(accept) is accepted
