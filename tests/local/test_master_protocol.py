"""protocol.py: RecordIO framing, the /state and text forms of resources, and the protobuf-JSON converter
(tables and Hypothesis properties). Duration text and the Resource JSON codec are tested in
tests/foundation/test_wire.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core import wire
from mesos_gpu.core.resources import Resources
from mesos_gpu.local import protocol as p
from mesos_gpu.local import protojson


@given(
    st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), min_size=1, max_size=5),
    st.lists(st.integers(1, 7), min_size=1, max_size=20),
)
def test_recordio_survives_any_split(events, cuts):
    blob = b"".join(p.encode_record(e) for e in events)
    decoder = p.RecordIODecoder()
    out, position, index = [], 0, 0
    while position < len(blob):
        size = cuts[index % len(cuts)]
        out.extend(decoder.feed(blob[position : position + size]))
        position += size
        index += 1
    assert out == events


def test_resources_state_and_description():
    res = wire.resources_from_mesos(
        [
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31002}]}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 10}},
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"},
        ],
        lenient=True,
    )
    assert p.describe_resources(res) == (
        "cpus(allocated: *):1.5; disk(allocated: *):10; ports(allocated: *):[31000-31002]"
    )
    assert p.describe_resources(res, None) == "cpus:1.5; disk:10; ports:[31000-31002]"
    state = p.resources_to_state(res.subtract_or_zero(Resources.from_ports([31001])))
    ports = "[31000-31000, 31002-31002]"
    assert state == {"cpus": 1.5, "mem": 0.0, "disk": 10.0, "gpus": 0.0, "ports": ports}
    assert list(state) == ["cpus", "mem", "disk", "gpus", "ports"]


def test_convert_like_mesos():
    call = protojson.convert(
        {"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {"value": "t"}}, "junk": 1},
        "scheduler.Call",
    )
    assert call == {"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {"value": "t"}}}
    assert "type" not in protojson.convert({"type": "NOT_A_TYPE"}, "scheduler.Call")  # optional enum dropped
    missing = r"Missing required fields: subscribe\.framework_info\.name"
    with pytest.raises(protojson.ConversionError, match=missing):
        subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u"}}}
        protojson.convert(subscribe, "scheduler.Call")
    with pytest.raises(protojson.ConversionError, match="Not expecting a JSON number for field 'type'"):
        protojson.convert({"type": 3}, "scheduler.Call")
    with pytest.raises(protojson.ConversionError, match="Unknown field"):
        protojson.convert({"type": "REVIVE", "junk": 1}, "scheduler.Call", strict=True)
    assert protojson.strict_errors({"type": "HEARTBEAT"}, "scheduler.Event") == []
    assert protojson.strict_errors({"type": "OFFERS", "offers": [{}]}, "scheduler.Event") != []  # erratum
    assert protojson.strict_errors({"type": "ERROR", "message": "x"}, "scheduler.Event") != []  # erratum
