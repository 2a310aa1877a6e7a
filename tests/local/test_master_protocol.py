"""protocol.py: RecordIO framing, Mesos Duration text, fixed-point resources and the protobuf-JSON
converter (tables and Hypothesis properties)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.local import protocol as p


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5secs"),
        (1.5, "1.5secs"),
        (900, "15mins"),
        (90, "1.5mins"),
        (0.25, "250ms"),
        (3600, "1hrs"),
        (86400 * 2, "2days"),
        (604800, "1weeks"),
        (0.000002, "2us"),
        (0, "0ns"),
        (1800, "30mins"),
    ],
)
def test_format_duration_matches_stout(seconds, text):
    assert p.format_duration(seconds) == text
    assert p.parse_duration(text) == pytest.approx(seconds)


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


scalars = st.integers(0, 10**6)
resources = st.builds(
    lambda c, m, g, lo, width: p.Resources.build(
        {"cpus": c, "mem": m, "gpus": g}, {"ports": ((lo, lo + width),)}
    ),
    scalars,
    scalars,
    st.integers(0, 8000),
    st.integers(30000, 31000),
    st.integers(0, 500),
)


@given(resources, resources)
def test_resources_add_then_subtract_is_identity(a, b):
    assert ((a + b) - b).scalars == a.scalars  # scalars add up; ranges are sets (overlaps merge)
    assert (a + b).contains(a) and (a + b).contains(b)
    assert a.contains(a - b)


def test_resources_fixed_point_does_not_drift():
    total = p.Resources()
    step = p.Resources.from_json([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}])
    for _ in range(10000):
        total = total + step
    assert total.scalar("cpus") == 1000.0
    for _ in range(10000):
        total = total - step
    assert total.empty()


def test_resources_json_and_description():
    res = p.Resources.from_json(
        [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31002}]}},
        ]
    )
    assert res.describe() == "cpus(allocated: *):1.5; ports(allocated: *):[31000-31002]"
    assert res.to_json()[0] == {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"}
    assert (res - p.Resources.build({}, {"ports": ((31001, 31001),)})).to_state()[
        "ports"
    ] == "[31000-31000, 31002-31002]"


def test_convert_like_mesos():
    call = p.convert(
        {"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {"value": "t"}}, "junk": 1},
        "scheduler.Call",
    )
    assert call == {"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {"value": "t"}}}
    assert "type" not in p.convert({"type": "NOT_A_TYPE"}, "scheduler.Call")  # optional enum dropped
    with pytest.raises(p.ConversionError, match=r"Missing required fields: subscribe\.framework_info\.name"):
        p.convert({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u"}}}, "scheduler.Call")
    with pytest.raises(p.ConversionError, match="Not expecting a JSON number for field 'type'"):
        p.convert({"type": 3}, "scheduler.Call")
    with pytest.raises(p.ConversionError, match="Unknown field"):
        p.convert({"type": "REVIVE", "junk": 1}, "scheduler.Call", strict=True)
    assert p.strict_errors({"type": "HEARTBEAT"}, "scheduler.Event") == []
    assert p.strict_errors({"type": "OFFERS", "offers": [{}]}, "scheduler.Event") != []  # the docs' erratum
    assert p.strict_errors({"type": "ERROR", "message": "x"}, "scheduler.Event") != []  # the docs' erratum
