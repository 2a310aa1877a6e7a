"""Marathon constraints: parsing and the semantics of every operator, as named table cases."""

from __future__ import annotations

import pytest

from mesos_gpu.core.placement import Constraint, Operator, parse_constraint, parse_constraints


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["hostname", "UNIQUE"], Constraint("hostname", Operator.UNIQUE)),
        ("hostname:UNIQUE", Constraint("hostname", Operator.UNIQUE)),
        (["rack", "group_by", "3"], Constraint("rack", Operator.GROUP_BY, "3")),
        ("gpu_model:LIKE:A100.*", Constraint("gpu_model", Operator.LIKE, "A100.*")),
        ("zone:LIKE:a:b", Constraint("zone", Operator.LIKE, "a:b")),
        (["rack", "CLUSTER"], Constraint("rack", Operator.CLUSTER)),
        (["rack", "MAX_PER", "2"], Constraint("rack", Operator.MAX_PER, "2")),
        (["os", "IS", "linux"], Constraint("os", Operator.IS, "linux")),
    ],
    ids=["list", "colon", "lowercase-op", "like", "colon-in-value", "cluster-no-value", "max-per", "is"],
)
def test_parse(raw, expected):
    parsed = parse_constraint(raw)
    assert parsed == expected
    assert parse_constraint(parsed.to_marathon()) == parsed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["hostname"], "must be"),
        (["hostname", "UNIQUE", "x", "y"], "must be"),
        (["hostname", "NEAR"], "unknown constraint operator"),
        (["gpu_model", "LIKE"], "needs a value"),
        (["gpu_model", "LIKE", "A100["], "bad regex"),
        (["rack", "MAX_PER", "two"], "not an integer"),
        (["rack", "MAX_PER", "0"], "out of range"),
        (["", "UNIQUE"], "must not be empty"),
    ],
    ids=["too-short", "too-long", "unknown-op", "like-without-value", "bad-regex", "max-per-nan",
         "max-per-zero", "empty-field"],
)
def test_parse_errors(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_constraint(raw)


def test_parse_constraints_and_reason():
    parsed = parse_constraints([["hostname", "UNIQUE"], "rack:GROUP_BY"])
    assert [c.reason for c in parsed] == ["constraint UNIQUE hostname", "constraint GROUP_BY rack"]
    assert str(parsed[0]) == "hostname:UNIQUE"


C = parse_constraint

# (name, constraint, agent value, placed counts by value, first placed value, allowed)
ALLOWS = [
    ("unique-empty", C("hostname:UNIQUE"), "h1", {}, None, True),
    ("unique-taken", C("hostname:UNIQUE"), "h1", {"h1": 1}, "h1", False),
    ("unique-other-taken", C("hostname:UNIQUE"), "h2", {"h1": 1}, "h1", True),
    ("unique-missing-attr", C("rack:UNIQUE"), None, {}, None, False),
    ("like-full-match", C("gpu_model:LIKE:A100.*"), "A100-80GB", {}, None, True),
    ("like-partial-is-no-match", C("gpu_model:LIKE:A100"), "A100-80GB", {}, None, False),
    ("like-missing-attr", C("gpu_model:LIKE:.*"), None, {}, None, False),
    ("unlike-match", C("gpu_model:UNLIKE:T4|P100"), "T4", {}, None, False),
    ("unlike-no-match", C("gpu_model:UNLIKE:T4|P100"), "V100", {}, None, True),
    ("unlike-missing-attr-passes", C("gpu_model:UNLIKE:T4"), None, {}, None, True),
    ("cluster-value-match", C("rack:CLUSTER:r1"), "r1", {}, None, True),
    ("cluster-value-other", C("rack:CLUSTER:r1"), "r2", {}, None, False),
    ("cluster-first-free", C("rack:CLUSTER"), "r2", {}, None, True),
    ("cluster-follows-first", C("rack:CLUSTER"), "r2", {"r1": 2}, "r1", False),
    ("cluster-same-as-first", C("rack:CLUSTER"), "r1", {"r1": 2}, "r1", True),
    ("max-per-under", C("rack:MAX_PER:2"), "r1", {"r1": 1}, "r1", True),
    ("max-per-at-limit", C("rack:MAX_PER:2"), "r1", {"r1": 2}, "r1", False),
    ("group-by-new-value", C("rack:GROUP_BY"), "r3", {"r1": 1, "r2": 1}, "r1", True),
    ("group-by-smallest", C("rack:GROUP_BY"), "r2", {"r1": 2, "r2": 1}, "r1", True),
    ("group-by-not-smallest", C("rack:GROUP_BY"), "r1", {"r1": 2, "r2": 1}, "r1", False),
    ("group-by-too-few-groups", C("rack:GROUP_BY:3"), "r1", {"r1": 1, "r2": 1}, "r1", False),
    ("group-by-enough-groups", C("rack:GROUP_BY:2"), "r1", {"r1": 1, "r2": 1}, "r1", True),
    ("is-equal", C("os:IS:linux"), "linux", {}, None, True),
    ("is-different", C("os:IS:linux"), "windows", {}, None, False),
]


@pytest.mark.parametrize("case", ALLOWS, ids=[case[0] for case in ALLOWS])
def test_allows(case):
    _, constraint, value, placed, first, allowed = case
    assert constraint.allows(value, placed, first) is allowed


@pytest.mark.parametrize(
    ("raw", "static"),
    [("a:LIKE:x", True), ("a:UNLIKE:x", True), ("a:IS:x", True), ("a:CLUSTER:x", True),
     ("a:CLUSTER", False), ("a:UNIQUE", False), ("a:GROUP_BY", False), ("a:MAX_PER:1", False)],
    ids=str,
)
def test_static_constraints_depend_on_the_agent_only(raw, static):
    assert parse_constraint(raw).is_static is static
