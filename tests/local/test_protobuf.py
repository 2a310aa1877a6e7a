"""protobuf.py: the binary codec over the proto tables (known answers derived by hand, tables of valid and
malformed inputs; the properties are in test_protobuf_properties), and a protobuf-encoded SUBSCRIBE /
ACCEPT / ACKNOWLEDGE round trip against the local master, and protobuf executor calls and events on an
agent."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import time
import uuid
from typing import Any

import pytest

from mesos_gpu.local import protobuf, protojson
from mesos_gpu.local.agent.agent import AgentConfig
from mesos_gpu.local.prototables import ENUMS, MESSAGES, field_spec
from tests.local.agent_helpers import FRAMEWORK_ID, AgentThread
from tests.local.agent_helpers import command_task as agent_task
from tests.local.agent_helpers import framework_info as agent_framework_info
from tests.local.conftest import WAIT, CallClient, RawStream, command_task, subscribe_body
from tests.local.test_protocol_nested import VALID

PROTOBUF = "application/x-protobuf"
PARSE_FAILED = "Failed to parse body into Call protobuf"  # Mesos' answer to any body that does not parse

# ---------------------------------------------------------------------------------------------------
# known answers, derived from the encoding rules: a field is a key varint (number << 3 | wire type)
# then its value; wire types 0 varint, 1 little-endian 64-bit, 2 length-delimited (a length varint).

ACKNOWLEDGE = {
    "framework_id": {"value": "f"},
    "type": "ACKNOWLEDGE",
    "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAECAw=="},
}
ACKNOWLEDGE_BYTES = bytes(
    [
        # Call.framework_id = 1, a message: key 1<<3|2 = 0x0a, length 3, then FrameworkID.value = 1:
        # key 0x0a, length 1, "f" (0x66)
        *(0x0A, 0x03, 0x0A, 0x01, 0x66),
        # Call.type = 2, an enum (varint): key 2<<3|0 = 0x10; ACKNOWLEDGE = 8
        *(0x10, 0x08),
        # Call.acknowledge = 8: key 8<<3|2 = 0x42, length 16 (0x10) = 5 + 5 + 6 bytes below
        *(0x42, 0x10),
        # Acknowledge.agent_id = 1: key 0x0a, length 3: AgentID.value "a" = 0x0a 0x01 0x61
        *(0x0A, 0x03, 0x0A, 0x01, 0x61),
        # Acknowledge.task_id = 2: key 2<<3|2 = 0x12, length 3: TaskID.value "t" = 0x0a 0x01 0x74
        *(0x12, 0x03, 0x0A, 0x01, 0x74),
        # Acknowledge.uuid = 3, bytes: key 3<<3|2 = 0x1a, length 4, base64 "AAECAw==" is 00 01 02 03
        *(0x1A, 0x04, 0x00, 0x01, 0x02, 0x03),
    ]
)

DECLINE = {"type": "DECLINE", "decline": {"offer_ids": [{"value": "o"}], "filters": {"refuse_seconds": 5.0}}}
DECLINE_BYTES = bytes(
    [
        # Call.type = 2: key 0x10; DECLINE = 4
        *(0x10, 0x04),
        # Call.decline = 5: key 5<<3|2 = 0x2a, length 16 = 5 (offer_ids) + 11 (filters)
        *(0x2A, 0x10),
        # Decline.offer_ids = 1 (repeated message, one element): key 0x0a, length 3, OfferID.value "o"
        *(0x0A, 0x03, 0x0A, 0x01, 0x6F),
        # Decline.filters = 2: key 0x12, length 9: Filters.refuse_seconds = 1, a double: key 1<<3|1 =
        # 0x09, then 5.0 as IEEE 754 little-endian: 0x4014000000000000 -> 00 00 00 00 00 00 14 40
        *(0x12, 0x09, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x40),
    ]
)

FAILURE = {"type": "FAILURE", "failure": {"status": -1}}
FAILURE_BYTES = bytes(
    [
        # Event.type = 1: key 0x08; FAILURE = 6
        *(0x08, 0x06),
        # Event.failure = 7: key 7<<3|2 = 0x3a, length 11: Failure.status = 3 (int32): key 0x18, then
        # -1 sign-extended to 64 bits, a ten-byte varint: nine 0xff then 0x01
        *(0x3A, 0x0B, 0x18, *([0xFF] * 9), 0x01),
    ]
)

RANGE = {"begin": 31000, "end": 2**64 - 1}
RANGE_BYTES = bytes(
    [
        # Value.Range.begin = 1 (uint64): key 0x08; 31000 = 0b1_1110010_0011000 -> 0x98 0xf2 0x01
        *(0x08, 0x98, 0xF2, 0x01),
        # Value.Range.end = 2: key 0x10; 2**64-1 is ten bytes: nine 0xff then 0x01
        *(0x10, *([0xFF] * 9), 0x01),
    ]
)


@pytest.mark.parametrize(
    "message,obj,data",
    [
        ("scheduler.Call", ACKNOWLEDGE, ACKNOWLEDGE_BYTES),
        ("scheduler.Call", DECLINE, DECLINE_BYTES),
        ("scheduler.Event", FAILURE, FAILURE_BYTES),
        ("Value.Range", RANGE, RANGE_BYTES),
    ],
    ids=["acknowledge", "decline_double", "failure_negative_int32", "range_uint64"],
)
def test_known_answers(message: str, obj: dict[str, Any], data: bytes) -> None:
    assert protobuf.encode(message, obj) == data
    assert protobuf.decode(message, data) == obj


# ---------------------------------------------------------------------------------------------------
# tables


def _without_empty(message: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The JSON form with empty repeated and map fields dropped: on the wire they are absent."""
    out = {}
    for key, item in obj.items():
        kind, label, _ = field_spec(MESSAGES[message][key])
        base = kind.removeprefix("map:")
        if item in ([], {}) and (label == "*" or kind.startswith("map:")):
            continue
        if base not in MESSAGES:
            out[key] = item
        elif kind.startswith("map:"):
            out[key] = {k: _without_empty(base, v) for k, v in item.items()}
        elif label == "*":
            out[key] = [_without_empty(base, v) for v in item]
        else:
            out[key] = _without_empty(base, item)
    return out


@pytest.mark.parametrize("obj,message", [(obj, msg) for _, msg, obj in VALID], ids=[c[0] for c in VALID])
def test_valid_nested_messages_round_trip(obj: dict[str, Any], message: str) -> None:
    expected = _without_empty(message, protojson.convert(obj, message))
    assert protobuf.decode(message, protobuf.encode(message, obj)) == expected


def test_every_message_and_enum_has_distinct_numbers() -> None:
    for name, fields in MESSAGES.items():
        numbers = [field_spec(spec).number for spec in fields.values()]
        assert len(numbers) == len(set(numbers)) and all(n > 0 for n in numbers), name
    for name, values in ENUMS.items():
        assert len(set(values.values())) == len(values), name


ENCODE_ERRORS: list[tuple[str, str, Any, str]] = [
    ("unknown_key", "ID", {"value": "x", "valu": "y"}, "Unknown field 'valu' in message 'ID'"),
    ("not_object", "scheduler.Call", [], "Expecting a JSON object for message 'scheduler.Call'"),
    ("missing_required", "Call.Kill", {"agent_id": {"value": "a"}}, "Missing required field: task_id"),
    ("nested_missing", "Call.Kill", {"task_id": {}}, "Missing required field: task_id.value"),
    ("string_number", "ID", {"value": 5}, "Not expecting a JSON number for field 'value'"),
    ("enum_unknown", "scheduler.Call", {"type": "SUBSCRIBED"}, "Failed to find enum for 'SUBSCRIBED'"),
    ("enum_number", "scheduler.Call", {"type": 1}, "Not expecting a JSON number for field 'type'"),
    ("bad_base64", "Call.Message", {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "%"},
     "Failed to base64 decode bytes field 'data'"),
    ("uint32_negative", "Port", {"number": -1}, "Value -1 out of range for uint32 field 'number'"),
    ("int32_too_big", "Address", {"port": 2**31}, "Value 2147483648 out of range for int32 field 'port'"),
    ("int_fraction", "Address", {"port": 1.5}, "Not expecting a JSON number for field 'port'"),
    ("bool_for_int", "Address", {"port": True}, "Not expecting a JSON boolean for field 'port'"),
    ("double_text", "Filters", {"refuse_seconds": "no"},
     "Not expecting a JSON string for field 'refuse_seconds'"),
    ("repeated_not_list", "Value.Set", {"item": "a"}, "Expecting a JSON array for field 'item'"),
    ("map_not_object", "OfferFilters.ResourceQuantities", {"quantities": []},
     "Expecting a JSON object for field 'quantities'"),
]  # fmt: skip


@pytest.mark.parametrize(
    "message,obj,error", [c[1:] for c in ENCODE_ERRORS], ids=[c[0] for c in ENCODE_ERRORS]
)
def test_encode_rejects_invalid_objects(message: str, obj: Any, error: str) -> None:
    with pytest.raises(protobuf.EncodeError) as raised:
        protobuf.encode(message, obj)
    assert str(raised.value) == error


def test_encode_accepts_the_json_wire_spellings() -> None:
    """Integers as integral floats or digit strings and doubles as numeric strings, as the JSON parse does."""
    assert protobuf.encode("Value.Range", {"begin": 1.0, "end": "2"}) == protobuf.encode(
        "Value.Range", {"begin": 1, "end": 2}
    )
    scalar = protobuf.encode("Value.Scalar", {"value": "2.5"})
    assert protobuf.decode("Value.Scalar", scalar) == {"value": 2.5}
    for word in ("Infinity", "-Infinity", "NaN"):
        encoded = protobuf.encode("Value.Scalar", {"value": word})
        assert protobuf.decode("Value.Scalar", encoded) == {"value": word}


DECODE_ERRORS: list[tuple[str, str, bytes, str]] = [
    ("truncated_varint", "scheduler.Call", b"\x10\x80", "Truncated varint at byte 2"),
    ("length_past_end", "scheduler.Call", b"\x0a\x05\x0a\x01f", "runs past the end"),
    ("field_number_zero", "scheduler.Call", b"\x00\x01", "Invalid field number 0"),
    ("wire_type_7", "scheduler.Call", b"\x0f", "Invalid wire type 7"),
    ("truncated_double", "Filters", b"\x09\x00\x00", "Truncated double"),
    ("long_varint", "scheduler.Call", b"\x10" + b"\xff" * 10 + b"\x01", "Varint longer than ten bytes"),
    ("missing_required", "Call.Kill", b"", "Missing required fields: task_id"),
    ("nested_required", "scheduler.Call", b"\x32\x02\x0a\x00", "Missing required fields: kill.task_id.value"),
    ("unknown_enum_required", "Resource", b"\x0a\x01x\x10\x09", "Missing required fields: type"),
    ("group_mismatch", "scheduler.Call", b"\xfb\x01\x84\x02", "Mismatched end of group"),
    ("json_body", "scheduler.Call", b'{"type": "SUBSCRIBE"}', ""),
]


@pytest.mark.parametrize(
    "message,data,error", [c[1:] for c in DECODE_ERRORS], ids=[c[0] for c in DECODE_ERRORS]
)
def test_decode_rejects_malformed_bytes(message: str, data: bytes, error: str) -> None:
    with pytest.raises(protobuf.DecodeError) as raised:
        protobuf.decode(message, data)
    assert error in str(raised.value)


UNKNOWN_FIELDS = {
    "varint": b"\xb8\x06\x96\x01",  # field 103, varint 150
    "fixed64": b"\xb9\x06" + bytes(8),  # field 103, eight bytes
    "length": b"\xba\x06\x03abc",  # field 103, three bytes
    "group": b"\xbb\x06\x08\x01\xbc\x06",  # field 103, a group holding field 1 = 1
    "fixed32": b"\xbd\x06" + bytes(4),  # field 103, four bytes
    "known_number_wrong_wire": b"\x11" + bytes(8),  # Call.type (2) as a fixed64: unknown to protobuf
}


@pytest.mark.parametrize("extra", list(UNKNOWN_FIELDS.values()), ids=list(UNKNOWN_FIELDS))
def test_decode_skips_unknown_fields(extra: bytes) -> None:
    assert protobuf.decode("scheduler.Call", extra + ACKNOWLEDGE_BYTES + extra) == ACKNOWLEDGE


def test_decode_reads_packed_and_unpacked_repeated_scalars() -> None:
    unpacked = b"\x08\x50\x20\xc8\x01\x20\xac\x02"  # port 80; statuses 200, 300 one by one
    packed = b"\x08\x50\x22\x04\xc8\x01\xac\x02"  # port 80; statuses packed: key 4<<3|2, length 4
    expected = {"port": 80, "statuses": [200, 300]}
    assert protobuf.decode("HealthCheck.HTTPCheckInfo", unpacked) == expected
    assert protobuf.decode("HealthCheck.HTTPCheckInfo", packed) == expected
    assert protobuf.encode("HealthCheck.HTTPCheckInfo", expected) == unpacked  # proto2 writes unpacked


def test_decode_merges_a_repeated_occurrence_of_a_message_field() -> None:
    first = protobuf.encode("scheduler.Call", {"kill": {"task_id": {"value": "t"}}})
    second = b"\x32\x05\x12\x03\x0a\x01a"  # Call.kill = 6 again, holding only Kill.agent_id = 2: "a"
    assert protobuf.decode("scheduler.Call", first + second) == {
        "kill": {"task_id": {"value": "t"}, "agent_id": {"value": "a"}}
    }
    later_type = protobuf.encode("scheduler.Call", {"type": "KILL"})
    assert protobuf.decode("scheduler.Call", b"\x10\x03" + later_type)["type"] == "KILL"  # the last wins


def test_decode_drops_unknown_enum_numbers_like_proto2() -> None:
    # CapabilityInfo.capabilities: CHOWN (1000), then 7 (no such capability), then KILL (1005)
    data = b"\x08\xe8\x07\x08\x07\x08\xed\x07"
    assert protobuf.decode("CapabilityInfo", data) == {"capabilities": ["CHOWN", "KILL"]}
    assert protobuf.decode("scheduler.Call", b"\x10\x63") == {}  # Call.type 99


def test_map_fields_are_entries_and_default_missing_parts() -> None:
    task = {"name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "a"}}
    limits = {"mem": {"value": 64.0}, "cpus": {"value": "Infinity"}}
    encoded = protobuf.encode("TaskInfo", {**task, "limits": limits})
    assert protobuf.decode("TaskInfo", encoded)["limits"] == limits
    base = protobuf.encode("TaskInfo", task)
    # TaskInfo.limits = 15: key 15<<3|2 = 0x7a; an entry with a key only gets an empty Value.Scalar,
    # which lacks its required `value`, so the message does not parse
    with pytest.raises(protobuf.DecodeError, match=r"limits\[0\]\.value\.value"):
        protobuf.decode("TaskInfo", base + b"\x7a\x05\x0a\x03mem")
    # map<string, string> entries default an absent value to ""
    context = b"\x2a\x03\x0a\x01k"  # StaticProvisioning.volume_context = 5, entry {key "k"}
    required = protobuf.encode(
        "CSIVolume.StaticProvisioning",
        {"volume_id": "v", "volume_capability": {"access_mode": {"mode": "SINGLE_NODE_WRITER"}}},
    )
    assert protobuf.decode("CSIVolume.StaticProvisioning", required + context)["volume_context"] == {"k": ""}


def test_operator_calls_decode_their_type_and_skip_payloads() -> None:
    # master.Call.type = 1: key 0x08, GET_STATE = 9; then get_metrics = 2 (an empty message), unknown here
    assert protobuf.decode("master.Call", b"\x08\x09\x12\x00") == {"type": "GET_STATE"}
    assert protobuf.decode("master.Call", b"\x08\x25") == {"type": "DRAIN_AGENT"}  # 37


def test_recordio_reader_splits_binary_records_at_any_cut() -> None:
    records = [protobuf.encode_record("scheduler.Event", e) for e in (FAILURE, {"type": "HEARTBEAT"})]
    blob = b"".join(records) + protobuf.encode_record("Value.Range", RANGE)
    for cut in range(1, 8):
        reader = protobuf.RecordReader()
        out: list[bytes] = []
        for start in range(0, len(blob), cut):
            out.extend(reader.feed(blob[start : start + cut]))
        assert out == [FAILURE_BYTES, b"\x08\x08", RANGE_BYTES]
    with pytest.raises(protobuf.DecodeError):
        protobuf.RecordReader().feed(b"x\n")


# ---------------------------------------------------------------------------------------------------
# the local master and agent, spoken to in protobuf


class ProtobufStream(RawStream):
    """A SUBSCRIBE sent as protobuf, accepting only protobuf: its events are RecordIO binary records."""

    def __init__(self, address: str, call: dict[str, Any]) -> None:
        body = protobuf.encode("scheduler.Call", call)
        super().__init__(address, body, {"Content-Type": PROTOBUF, "Accept": PROTOBUF})
        self.reader = protobuf.RecordReader()

    def next_event(self, timeout: float = WAIT) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        while not self.pending:
            chunk = self._next_chunk()
            if chunk is None:
                raise EOFError("end of chunked body")
            self.pending.extend(protobuf.decode("scheduler.Event", r) for r in self.reader.feed(chunk))
        return self.pending.pop(0)


def _post(client: CallClient, call: dict[str, Any]) -> tuple[int, str]:
    status, text, _ = client.post(protobuf.encode("scheduler.Call", call), {"Content-Type": PROTOBUF})
    return status, text


def test_protobuf_subscribe_accept_acknowledge_round_trip(cluster) -> None:
    stream = ProtobufStream(cluster.master_address, subscribe_body())
    client: CallClient | None = None
    try:
        assert stream.status == 200, stream.body_text()
        assert stream.headers["content-type"] == PROTOBUF
        subscribed = stream.next_of("SUBSCRIBED")
        framework_id = subscribed["subscribed"]["framework_id"]
        assert subscribed["subscribed"]["master_info"]["port"] == int(cluster.master_address.split(":")[1])
        offer = stream.next_of("OFFERS")["offers"]["offers"][0]
        client = CallClient(cluster.master_address, stream.headers["mesos-stream-id"])
        task_id = f"pb-{uuid.uuid4()}"
        accept = {
            "framework_id": framework_id,
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [command_task(offer, task_id)]}}],
                "filters": {"refuse_seconds": 1.0},
            },
        }
        assert _post(client, accept) == (202, "")
        states: list[str] = []
        while "TASK_FINISHED" not in states:
            status = stream.next_of("UPDATE")["update"]["status"]
            assert status["task_id"]["value"] == task_id
            states.append(status["state"])
            assert len(base64.b64decode(status["uuid"])) == 16
            ack = {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}
            call = {"framework_id": framework_id, "type": "ACKNOWLEDGE", "acknowledge": ack}
            assert _post(client, call) == (202, "")
        assert states[-1] == "TASK_FINISHED"
        deadline = time.monotonic() + 1.5  # acknowledged: no retry of the update (retry interval 0.5 s)
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = stream.next_event(left)
            except TimeoutError:
                break
            assert event["type"] != "UPDATE", event
        # SUBSCRIBE whose FrameworkInfo lacks the required `user`: Call.type = 2 SUBSCRIBE (1), then
        # Call.subscribe = 3 {framework_info = 1 {name = 2 "x"}}: it does not parse, as in Mesos
        no_user = b"\x10\x01\x1a\x05\x0a\x03\x12\x01x"
        assert client.post(no_user, {"Content-Type": PROTOBUF})[:2] == (400, PARSE_FAILED)
        kill_without_kill = {**copy.deepcopy(accept), "type": "KILL"}
        assert _post(client, kill_without_kill) == (
            400,
            "Failed to validate scheduler::Call: Expecting 'kill' to be present",
        )
    finally:
        stream.close()
        if client is not None:
            client.close()


def test_master_answers_malformed_protobuf_with_mesos_text(cluster) -> None:
    client = CallClient(cluster.master_address)
    try:
        status, text, _ = client.post(b"\x0a\x05\x0a", {"Content-Type": PROTOBUF})
        assert (status, text) == (400, PARSE_FAILED)
    finally:
        client.close()


def test_operator_api_reads_protobuf_calls(cluster) -> None:
    client = CallClient(cluster.master_address)
    try:
        get_health = b"\x08\x01"  # master.Call.type = 1: GET_HEALTH (1); the answer is JSON, as accepted
        status, text, _ = client.post(
            get_health, {"Content-Type": PROTOBUF, "Accept": "application/json"}, path="/api/v1"
        )
        assert status == 200 and json.loads(text)["type"] == "GET_HEALTH"
        status, text, _ = client.post(b"\x08", {"Content-Type": PROTOBUF}, path="/api/v1")
        assert (status, text) == (400, PARSE_FAILED)
    finally:
        client.close()


def test_agent_executor_api_reads_protobuf_calls(tmp_path) -> None:
    with AgentThread(tmp_path) as agent:
        headers = {"Content-Type": PROTOBUF}

        def post(call: dict[str, Any]) -> tuple[int, bytes]:
            body = protobuf.encode("executor.Call", call)
            status, _, answer = agent.http("POST", "/api/v1/executor", body, headers)
            return status, answer

        ids = {"executor_id": {"value": "ex1"}, "framework_id": {"value": "nope"}}
        assert post({**ids, "type": "HEARTBEAT"})[0] == 202
        assert post({**ids, "type": "SUBSCRIBE", "subscribe": {}}) == (400, b"Framework cannot be found")
        assert post({**ids, "type": "UPDATE"}) == (
            400,
            b"Failed to validate Executor::Call: Expecting 'update' to be present",
        )
        status, _, body = agent.http("POST", "/api/v1/executor", b"\x0a\x01", headers)
        assert (status, body) == (400, PARSE_FAILED.encode())


def test_agent_streams_protobuf_events_to_an_executor_accepting_only_protobuf(tmp_path) -> None:
    config = AgentConfig(cpus=2, mem=1024, disk=1024, docker="off", executor_registration_timeout=30.0)
    with AgentThread(tmp_path, config) as agent:
        executor = {
            "type": "CUSTOM",
            "executor_id": {"value": "ex1"},
            "command": {"value": "sleep 30"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        }
        task = {key: value for key, value in agent_task("t1").items() if key != "command"}
        agent.call(agent.agent.launch, agent_framework_info(), task={**task, "executor": executor})
        ids = {"executor_id": {"value": "ex1"}, "framework_id": {"value": FRAMEWORK_ID}}
        body = protobuf.encode("executor.Call", {**ids, "type": "SUBSCRIBE", "subscribe": {}})
        conn = http.client.HTTPConnection(*agent.agent.endpoint(), timeout=WAIT)
        try:
            conn.request("POST", "/api/v1/executor", body, {"Content-Type": PROTOBUF, "Accept": PROTOBUF})
            response = conn.getresponse()
            assert (response.status, response.getheader("Content-Type")) == (200, PROTOBUF)
            reader = protobuf.RecordReader()
            events: list[dict[str, Any]] = []
            while len(events) < 2:
                events += [protobuf.decode("executor.Event", r) for r in reader.feed(response.read1(65536))]
        finally:
            conn.close()
        assert [event["type"] for event in events] == ["SUBSCRIBED", "LAUNCH"]
        assert events[0]["subscribed"]["framework_info"]["id"] == {"value": FRAMEWORK_ID}
        assert events[1]["launch"]["task"]["task_id"] == {"value": "t1"}
