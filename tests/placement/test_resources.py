"""Resources: fixed-point arithmetic, ranges, containment and the text form (the Mesos JSON codec is
tested in tests/foundation/test_wire.py)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.resources import (
    Resources,
    ResourcesError,
    from_milli,
    ranges_count,
    ranges_subtract,
    take_lowest,
    take_ports,
    to_milli,
)
from tests.placement.strategies import decimals, port_ranges, resources


# ----------------------------------------------------------------- fixed point
@pytest.mark.parametrize(
    ("value", "milli"),
    [(0, 0), (1, 1000), (0.1, 100), (0.0005, 1), (0.0004, 0), (1.2345, 1235), ("2.5", 2500),
     (4096.0, 4096000)],
    ids=["zero", "int", "tenth", "half-up", "below-half", "round-half-up", "string", "float-whole"],
)
def test_to_milli_rounds_like_mesos_llround(value, milli):
    assert to_milli(value) == milli


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), True], ids=str)
def test_to_milli_rejects_negative_nonfinite_and_bool(value):
    with pytest.raises(ResourcesError):
        to_milli(value)


def test_from_milli_gives_int_when_whole():
    assert from_milli(4000) == 4 and isinstance(from_milli(4000), int)
    assert from_milli(1500) == 1.5


def test_tenths_repeated_ten_thousand_times_do_not_drift():
    tenth = Resources.of(cpus=0.1, mem=0.001)
    total = Resources()
    for _ in range(10_000):
        total = total + tenth
    assert total == Resources.of(cpus=1000, mem=10)
    for _ in range(10_000):
        total = total - tenth
    assert total.is_empty()


def disjoint_from(b: Resources, a: Resources) -> Resources:
    """`b` without the port numbers and set items of `a`: ranges and sets add as unions, as in Mesos."""
    return Resources(
        b.scalars_milli(),
        {"ports": ranges_subtract(b.ports, a.ports)},
        {"zones": b.set_items("zones") - a.set_items("zones")},
    )


@settings(max_examples=300, deadline=None)
@given(a=resources(), b=resources())
def test_add_then_subtract_is_exact(a, b):
    b = disjoint_from(b, a)
    assert a + b - b == a


@settings(max_examples=50, deadline=None)
@given(start=resources(), steps=st.lists(decimals(100), min_size=1, max_size=50))
def test_repeated_decimal_arithmetic_never_drifts(start, steps):
    total = start
    for _ in range(40):
        for step in steps:
            total = total + Resources.of(cpus=step, gpus=step)
    for _ in range(40):
        for step in reversed(steps):
            total = total - Resources.of(cpus=step, gpus=step)
    assert total == start


@settings(max_examples=200, deadline=None)
@given(a=resources(), b=resources())
def test_contains_matches_subtraction(a, b):
    total = a + b
    assert total.contains(a) and total.contains(b)
    assert a <= total and total >= b
    if a.contains(b):
        assert (a - b) + b == a
    else:
        with pytest.raises(ResourcesError):
            a - b


@settings(max_examples=200, deadline=None)
@given(a=resources(), b=resources())
def test_subtract_or_zero_is_contained_and_never_negative(a, b):
    rest = a.subtract_or_zero(b)
    assert a.contains(rest)
    assert all(rest.scalar_milli(name) >= 0 for name in rest.names())


@settings(max_examples=200, deadline=None)
@given(a=resources())
def test_text_round_trip(a):
    assert Resources.parse(str(a)) == a if not a.is_empty() else True


@settings(max_examples=100, deadline=None)
@given(a=resources())
def test_pickle_and_hash_follow_equality(a):
    copy = pickle.loads(pickle.dumps(a))
    assert copy == a and hash(copy) == hash(a)


# ----------------------------------------------------------------- value-type behaviour
def test_resources_are_immutable():
    r = Resources.of(cpus=1)
    with pytest.raises(AttributeError):
        r.role = "tf"  # type: ignore[misc]


def test_zero_and_empty_entries_are_dropped():
    r = Resources({"cpus": 0, "mem": 5}, {"ports": []}, {"zones": []})
    assert r.names() == {"mem"}
    assert not Resources() and Resources().is_empty()
    assert Resources.of(cpus=1) - Resources.of(cpus=1) == Resources()


def test_subtracting_what_is_absent_names_what_is_missing():
    with pytest.raises(ResourcesError, match=r"missing gpus:1"):
        Resources.of(cpus=4) - Resources.of(cpus=1, gpus=1)


def test_partial_order():
    small, big = Resources.of(cpus=1), Resources.of(cpus=2, mem=10)
    same = Resources.of(cpus=1)
    assert small < big and big > small and small <= same and not small < same
    other = Resources.of(gpus=1)
    assert not small <= other and not other <= small


def test_accessors():
    r = Resources.parse("cpus:2.5;mem:1024;disk:10;gpus:1;fpga:3;ports:[31000-31002];zones:{b,a}")
    assert (r.cpus, r.mem, r.disk, r.gpus, r.scalar("fpga")) == (2.5, 1024, 10, 1, 3)
    assert r.scalar_milli("cpus") == 2500 and r.scalar("absent") == 0
    assert r.ports == ((31000, 31002),) and r.set_items("zones") == {"a", "b"}
    assert list(r) == ["cpus", "disk", "fpga", "gpus", "mem", "ports", "zones"]


# ----------------------------------------------------------------- ranges and ports
@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ([(5, 9), (1, 3)], ((1, 3), (5, 9))),
        ([(1, 3), (4, 6)], ((1, 6),)),
        ([(1, 10), (3, 4)], ((1, 10),)),
        ([(1, 5), (3, 8), (20, 20)], ((1, 8), (20, 20))),
    ],
    ids=["sorted", "adjacent-merged", "nested", "overlapping"],
)
def test_ranges_are_normalised(raw, normal):
    assert Resources.of(ports=raw).ports == normal


@pytest.mark.parametrize("bad", [[(5, 4)], [(-1, 3)], [(1.5, 3)]], ids=["reversed", "negative", "float"])
def test_bad_ranges_are_rejected(bad):
    with pytest.raises(ResourcesError):
        Resources.of(ports=bad)


def test_range_subtraction_splits():
    assert ranges_subtract(((1, 10),), ((3, 4), (8, 8))) == ((1, 2), (5, 7), (9, 10))
    assert ranges_subtract(((1, 3),), ((0, 5),)) == ()


def test_take_ports_is_lowest_first_and_deterministic():
    ranges = ((31000, 31001), (31005, 31010))
    assert take_ports(ranges, 4) == (31000, 31001, 31005, 31006)
    assert take_ports(ranges, 0) == ()
    with pytest.raises(ResourcesError, match="8 available"):
        take_ports(ranges, 9)
    offer = Resources.of(ports=ranges)
    picked = Resources.from_ports(offer.take_ports(3))
    assert offer.contains(picked) and (offer - picked).ports == ((31006, 31010),)


@given(port_ranges(), st.integers(min_value=0, max_value=500))
def test_take_lowest_takes_the_lowest_integers_and_leaves_the_rest(raw, count):
    ranges = Resources.of(ports=raw).ports
    if count > ranges_count(ranges):
        with pytest.raises(ResourcesError):
            take_lowest(ranges, count)
        return
    ports, rest = take_lowest(ranges, count)
    every = sorted(port for begin, end in ranges for port in range(begin, end + 1))
    assert ports == tuple(every[:count]) == take_ports(ranges, count)
    assert rest == ranges_subtract(ranges, [(port, port) for port in ports])
    assert ranges_count(rest) == ranges_count(ranges) - count


def test_take_lowest_table():
    ranges = ((31000, 31001), (31005, 31010))
    assert take_lowest(ranges, 1) == ((31000,), ((31001, 31001), (31005, 31010)))
    assert take_lowest(ranges, 2) == ((31000, 31001), ((31005, 31010),))
    assert take_lowest(ranges, 8) == ((31000, 31001, 31005, 31006, 31007, 31008, 31009, 31010), ())
    assert take_lowest(ranges, 0) == ((), ranges)
    with pytest.raises(ResourcesError, match="cannot take -1"):
        take_lowest(ranges, -1)


def test_labels_come_from_the_left_operand():
    offer = Resources.of(cpus=16, gpus=4, allocation_role="tf")
    assert (offer - Resources.of(cpus=1)).allocation_role == "tf"
    assert (Resources.of(cpus=1) + offer).allocation_role is None
    assert offer.with_labels(role="ml") == Resources.of(cpus=16, gpus=4, role="ml", allocation_role="tf")


# ----------------------------------------------------------------- text form
def test_parse_text_form_with_role():
    r = Resources.parse("cpus(tf):2;mem(tf):10")
    assert r.role == "tf" and r.cpus == 2
    with pytest.raises(ResourcesError, match="mixed roles"):
        Resources.parse("cpus(tf):2;mem(*):10")


@pytest.mark.parametrize("text", ["cpus", "cpus:abc", "ports:[1-", "ports:[a-b]", "zones:{a"], ids=str)
def test_parse_rejects_bad_text(text):
    with pytest.raises(ResourcesError):
        Resources.parse(text)


def test_plus_ports_adds_port_numbers_as_ranges():
    ports = Resources.of(cpus=1).plus_ports([31003, 31001, 31002, 31007]).ports
    assert ports == ((31001, 31003), (31007, 31007))
    assert Resources.of(ports=[(1, 2)]).plus_ports([3]).ports == ((1, 3),)
    base = Resources.of(cpus=1)
    assert base.plus_ports([]) is base
    for bad in ([True], [-1], [1.5]):
        with pytest.raises(ResourcesError):
            base.plus_ports(bad)
