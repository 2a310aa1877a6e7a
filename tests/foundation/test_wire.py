"""core/wire.py: the Mesos wire forms shared by the scheduler, local/ and isolator (tables and
Hypothesis properties)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core import wire
from mesos_gpu.core.model import TaskState
from mesos_gpu.core.resources import Resources, ResourcesError
from tests.placement.strategies import resources


def test_public_surface_is_pinned():
    assert sorted(wire.__all__) == [
        "MasterUrl", "TERMINAL_TASK_STATES", "ZOOKEEPER_RECONNECT", "ZooKeeperUrl", "duration_info",
        "duration_info_nanoseconds", "duration_info_seconds", "format_duration", "is_terminal_state",
        "json_kind", "kill_grace_seconds", "mesos_order", "parse_duration", "parse_zk_url",
        "resource_labels", "resources_from_mesos", "resources_from_mesos_by_role", "resources_to_mesos",
    ]
    assert all(getattr(wire, name) is not None for name in wire.__all__)


# ----------------------------------------------------------------- task states
def test_terminal_states_are_mesos_is_terminal_state():
    mesos = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
             "TASK_GONE", "TASK_GONE_BY_OPERATOR"}     # protobuf::isTerminalState
    assert mesos == wire.TERMINAL_TASK_STATES
    for state in TaskState:
        assert state.is_terminal == wire.is_terminal_state(state.value), state
    assert not wire.is_terminal_state("TASK_UNREACHABLE") and not wire.is_terminal_state("TASK_BOGUS")


# ----------------------------------------------------------------- durations
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
        (1.5e-9, "2ns"),
        (1800, "30mins"),
        (-5, "-5secs"),
    ],
)
def test_format_duration_matches_stout(seconds, text):
    assert wire.format_duration(seconds) == text
    assert wire.parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(" 5secs ", 5), ("500ms", 0.5), ("1.5mins", 90), (".5secs", 0.5), ("5.ms", 0.005), ("1e+3ns", 1e-6)],
)
def test_parse_duration_reads_what_mesos_writes(text, seconds):
    assert wire.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "secs", "5 seconds", "5s", "1.2.3secs", "five secs"])
def test_parse_duration_rejects_what_is_not_one(text):
    with pytest.raises(ValueError, match="Invalid duration"):
        wire.parse_duration(text)


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_duration_text_round_trip(seconds):
    back = wire.parse_duration(wire.format_duration(seconds))
    assert back == pytest.approx(seconds, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("info", "seconds"),
    [({"nanoseconds": 1_500_000_000}, 1.5), ({"nanoseconds": "2000000000"}, 2.0),
     ({"nanoseconds": -1e9}, -1.0), ({}, 7.0), (None, 7.0), ({"nanoseconds": "x"}, 7.0),
     ({"nanoseconds": None}, 7.0), ([1], 7.0)],
)
def test_duration_info_seconds(info, seconds):
    assert wire.duration_info_seconds(info, 7.0) == seconds


def test_duration_info_round_trip():
    assert wire.duration_info(10) == {"nanoseconds": 10_000_000_000}
    assert wire.duration_info(0.3) == {"nanoseconds": 300_000_000}     # rounded, not truncated
    assert wire.duration_info_nanoseconds(wire.duration_info(2.5)) == 2_500_000_000
    assert wire.duration_info_nanoseconds({"seconds": 1}) is None


@pytest.mark.parametrize(
    ("policy", "seconds"),
    [({"grace_period": {"nanoseconds": 3_000_000_000}}, 3.0), ({"grace_period": {"nanoseconds": 0}}, 0.0),
     ({"grace_period": {"nanoseconds": -5}}, 0.0), ({"grace_period": {}}, 10.0), ({}, 10.0), (None, 10.0),
     ({"grace_period": {"nanoseconds": "soon"}}, 10.0), ({"grace_period": 3}, 10.0)],
    ids=["three", "zero", "negative-clamped", "empty-grace", "no-grace", "no-policy", "malformed",
         "not-info"],
)
def test_kill_grace_seconds(policy, seconds):
    assert wire.kill_grace_seconds(policy, 10.0) == seconds


# ----------------------------------------------------------------- Resource JSON
TF = {"role": "*", "allocation_info": {"role": "tf"}}
OFFER_RESOURCES = [
    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 16}, **TF},
    {"name": "mem", "type": "SCALAR", "scalar": {"value": 64000.5}, **TF},
    {"name": "gpus", "type": "SCALAR", "scalar": {"value": 4}, **TF},
    {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}, **TF},
]


@settings(max_examples=200, deadline=None)
@given(a=resources(), role=st.sampled_from(["*", "tf"]), allocation=st.sampled_from([None, "*", "ml"]))
def test_resource_json_round_trip(a, role, allocation):
    labelled = a.with_labels(role=role, allocation_role=allocation)
    items = wire.resources_to_mesos(labelled)
    expected = labelled if not a.is_empty() else Resources()      # no entry carries the labels
    assert wire.resources_from_mesos(items) == expected
    assert wire.resources_from_mesos(json.loads(json.dumps(items))) == expected
    assert wire.resources_from_mesos(items, lenient=True) == a


def test_reads_an_offer_and_echoes_its_allocation_info():
    r = wire.resources_from_mesos(OFFER_RESOURCES)
    assert (r.cpus, r.mem, r.gpus, r.ports) == (16, 64000.5, 4, ((31000, 32000),))
    assert (r.role, r.allocation_role) == ("*", "tf")
    task = Resources.of(cpus=1, gpus=1).with_labels(allocation_role=r.allocation_role)
    assert wire.resources_to_mesos(task) == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, **TF},
        {"name": "gpus", "type": "SCALAR", "scalar": {"value": 1.0}, **TF},
    ]


def test_writes_what_mesos_writes_byte_for_byte():
    res = Resources.parse("zones:{b,a};ports:[31000-31002];disk:10;cpus:1.5;gpus:1;mem:32")
    assert [item["name"] for item in wire.resources_to_mesos(res)] == [
        "cpus", "mem", "gpus", "disk", "ports", "zones"
    ]
    assert json.dumps(wire.resources_to_mesos(res)[:1] + wire.resources_to_mesos(res)[-2:]) == (
        '[{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"}, '
        '{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31002}]}, '
        '"role": "*"}, {"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}, "role": "*"}]'
    )
    assert json.dumps(wire.resources_to_mesos(res)[3]["scalar"]) == '{"value": 10.0}'  # floats, as Mesos
    assert wire.resources_to_mesos(res.with_labels(allocation_role="eng"))[3] == {
        "name": "disk", "type": "SCALAR", "scalar": {"value": 10.0}, "role": "*",
        "allocation_info": {"role": "eng"},
    }
    assert wire.resources_to_mesos(Resources()) == []


def test_reservations_become_the_role_and_mixed_roles_are_split():
    reserved = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2},
                "reservations": [{"type": "STATIC", "role": "tf"}]}
    unreserved = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "*"}
    assert wire.resources_from_mesos([reserved]).role == "tf"
    with pytest.raises(ResourcesError, match="mixed roles"):
        wire.resources_from_mesos([reserved, unreserved])
    split = wire.resources_from_mesos_by_role([reserved, unreserved])
    assert split[("tf", None)].cpus == 2 and split[("*", None)].cpus == 1
    assert wire.resources_from_mesos([reserved, unreserved], lenient=True) == Resources.of(cpus=3)


def test_interleaved_roles_are_split_per_entry():
    entries = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "*"},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}, "role": "ml"},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}, "role": "*"},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 8}, **TF},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 0.5}, "role": ""},
        {"name": "gpus", "type": "SCALAR", "scalar": {"value": 0}},
    ]
    split = wire.resources_from_mesos_by_role(entries)
    assert split == {
        ("*", None): Resources.of(cpus=5, mem=0.5),
        ("ml", None): Resources.of(cpus=2, role="ml"),
        ("*", "tf"): Resources.of(cpus=8, allocation_role="tf"),
    }
    assert "gpus" not in split[("*", None)].names()     # zero scalars are dropped


def test_sums_repeated_names_and_reads_sets():
    r = wire.resources_from_mesos([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.2}},
        {"name": "zones", "type": "SET", "set": {"item": ["b", "a"]}},
    ])
    assert r.scalar_milli("cpus") == 300 and r.set_items("zones") == {"a", "b"}
    assert wire.resources_from_mesos([]) == Resources()


BAD_ENTRIES = {
    "no-name": {"type": "SCALAR", "scalar": {"value": 1}},
    "no-value": {"name": "cpus", "type": "SCALAR"},
    "bad-type": {"name": "x", "type": "TEXT"},
    "negative": {"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}},
    "not-a-number": {"name": "cpus", "type": "SCALAR", "scalar": {"value": "x"}},
    "nan": {"name": "mem", "type": "SCALAR", "scalar": {"value": float("nan")}},
    "overflow": {"name": "mem", "type": "SCALAR", "scalar": {"value": 1e308}},
    "inverted-range": {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}},
    "half-range": {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 7}]}},
    "negative-range": {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": -1, "end": 1}]}},
    "not-an-object": "junk",
}


@pytest.mark.parametrize("entry", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_strict_rejects_and_lenient_skips_bad_entries(entry):
    with pytest.raises(ResourcesError):
        wire.resources_from_mesos([entry])
    good = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}, "role": "gpu"}
    assert wire.resources_from_mesos([good, entry], lenient=True) == Resources.of(cpus=2)


def test_lenient_reader_is_fixed_point_and_takes_anything():
    total = Resources()
    cpus = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]
    step = wire.resources_from_mesos(cpus, lenient=True)
    for _ in range(10000):
        total = total + step
    assert total.scalar("cpus") == 1000.0
    for _ in range(10000):
        total = total.subtract_or_zero(step)
    assert total.is_empty()
    for junk in (None, "cpus:1", {"name": "cpus"}, 3):
        assert wire.resources_from_mesos(junk, lenient=True) == Resources()
        with pytest.raises(ResourcesError):
            wire.resources_from_mesos(junk)


# ----------------------------------------------------------------- ZooKeeper URLs
@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("zk://10.0.0.1:2181,10.0.0.2:2181/mesos-gpu/prod",
         wire.ZooKeeperUrl("10.0.0.1:2181,10.0.0.2:2181", "/mesos-gpu/prod")),
        (" zk://zk:2181/mesos ", wire.ZooKeeperUrl("zk:2181", "/mesos")),
        ("zk://zk:2181", wire.ZooKeeperUrl("zk:2181", "/")),
        ("zk://zk:2181/", wire.ZooKeeperUrl("zk:2181", "/")),
        ("zk://user:secret@zk:2181/m", wire.ZooKeeperUrl("zk:2181", "/m", "user:secret")),
        ("zk://[::1]:2181/m", wire.ZooKeeperUrl("[::1]:2181", "/m")),
    ],
)
def test_parse_zk_url(url, parsed):
    assert wire.parse_zk_url(url) == parsed


@pytest.mark.parametrize(
    "url",
    ["zk1:2181/m", "http://zk:2181/m", "zk:///m", "zk://zk/m", "zk://zk:0/m", "zk://zk:65536/m",
     "zk://zk:21x/m", "zk://:2181/m", "zk://a:1,/m", "zk://zk:2181/m/", "zk://zk:2181//m",
     "zk://zk:2181/m/../n", "zk://zk:2181/m n", "zk://nopassword@zk:2181/m"],
)
def test_parse_zk_url_rejects(url):
    with pytest.raises(ValueError, match="ZooKeeper URL"):
        wire.parse_zk_url(url)


# ----------------------------------------------------------------- JSON kinds
@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "boolean"), (1, "number"), (1.5, "number"), ("x", "string"), ([], "array"), (None, "null"),
     ({}, "object")],
)
def test_json_kind(value, kind):
    assert wire.json_kind(value) == kind
