"""The tenants document (`mesos_gpu.core.tenancy`): tables of valid and invalid documents, JSON paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.tenancy import TenantQuota, TenantsConfig, gpus_text, milli_gpus


def test_a_full_document_reads_in_thousandths_and_writes_back_canonical() -> None:
    config = TenantsConfig.of({
        "tenants": {"team-a": {"quota": 12, "limit": 16, "may_borrow": True, "weight": 2},
                    "team-b": {"quota": 0.25, "may_borrow": False}},
        "default": {"limit": 4},
        "unassigned_gpus": 2.5,
    })
    assert config.tenants["team-a"] == TenantQuota(12000, 16000, True, 2.0)
    assert config.tenants["team-b"] == TenantQuota(250, None, False, 1.0)
    assert config.default == TenantQuota(0, 4000, True, 1.0)
    assert config.unassigned == 2500
    assert config.to_dict() == {
        "tenants": {"team-a": {"quota": 12, "limit": 16, "may_borrow": True, "weight": 2},
                    "team-b": {"quota": 0.25, "limit": None, "may_borrow": False, "weight": 1}},
        "default": {"limit": 4, "may_borrow": True, "weight": 1},
        "unassigned_gpus": 2.5,
    }
    assert TenantsConfig.of(config.to_dict()) == config


def test_an_empty_document_lists_no_tenant_and_lends_nothing() -> None:
    config = TenantsConfig.of({})
    assert config.tenants == {} and config.unassigned == 0
    assert config.of_tenant("anyone") == TenantQuota()   # no quota, no limit, may borrow, weight 1


@pytest.mark.parametrize(("document", "path", "words"), [
    ([], "", "JSON object"),
    ({"tenant": {}}, "/tenant", "unknown field"),
    ({"tenants": []}, "/tenants", "must be an object"),
    ({"tenants": {"Team A": {"quota": 1}}}, "/tenants/Team A", "tenant name"),
    ({"tenants": {"a": 3}}, "/tenants/a", "must be an object"),
    ({"tenants": {"a": {"quota": -1}}}, "/tenants/a/quota", "from 0"),
    ({"tenants": {"a": {"quota": "4"}}}, "/tenants/a/quota", "number of GPUs"),
    ({"tenants": {"a": {"quota": True}}}, "/tenants/a/quota", "number of GPUs"),
    ({"tenants": {"a": {"quota": 0.125}}}, "/tenants/a/quota", "multiple of 0.01"),
    # a float that rounds to 0 hundredths is still not a multiple of 0.01 (found by schemathesis)
    ({"unassigned_gpus": 2.2250738585072014e-308}, "/unassigned_gpus", "multiple of 0.01"),
    ({"tenants": {"a": {"quota": 4, "limit": 2}}}, "/tenants/a/limit", "below the quota"),
    ({"tenants": {"a": {"quota": 1, "may_borrow": "yes"}}}, "/tenants/a/may_borrow", "true or false"),
    ({"tenants": {"a": {"quota": 1, "weight": 0}}}, "/tenants/a/weight", "above 0"),
    ({"tenants": {"a": {"quota": 1, "weight": float("nan")}}}, "/tenants/a/weight", "above 0"),
    ({"tenants": {"a": {"quota": 1, "gpus": 2}}}, "/tenants/a/gpus", "unknown field"),
    ({"default": {"quota": 2}}, "/default/quota", "unknown field"),
    ({"unassigned_gpus": -2}, "/unassigned_gpus", "from 0"),
])
def test_a_bad_document_names_the_json_path_of_each_problem(document: Any, path: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TenantsConfig.of(document)
    assert [(e.path, words in e.message) for e in info.value.errors] == [(path, True)], info.value.errors


def test_every_problem_is_listed_not_only_the_first() -> None:
    with pytest.raises(ValidationError) as info:
        TenantsConfig.of({"tenants": {"a": {"quota": -1}, "b": {"weight": -1}}, "unassigned_gpus": "x"})
    assert sorted(e.path for e in info.value.errors) == ["/tenants/a/quota", "/tenants/b/weight",
                                                         "/unassigned_gpus"]


def test_a_tenant_that_may_not_borrow_is_bounded_by_its_quota() -> None:
    assert TenantQuota(4000, None, False).ceiling == 4000
    assert TenantQuota(4000, 6000, True).ceiling == 6000
    assert TenantQuota(4000, None, True).ceiling is None


@pytest.mark.parametrize(("milli", "text"), [(12000, "12"), (250, "0.25"), (1500, "1.5"), (0, "0")])
def test_gpus_text(milli: int, text: str) -> None:
    assert gpus_text(milli) == text


@given(st.integers(0, 10_000_000).map(lambda hundredths: hundredths / 100))
def test_hundredths_of_a_gpu_round_trip_exactly(gpus: float) -> None:
    config = TenantsConfig.of({"tenants": {"t": {"quota": gpus}}})
    assert config.tenants["t"].quota == milli_gpus(gpus)
    assert TenantsConfig.of(config.to_dict()) == config


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**7, 10**7) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12)
terms = st.fixed_dictionaries({}, optional={"quota": json_values, "limit": json_values,
                                            "may_borrow": json_values, "weight": json_values})


@given(st.fixed_dictionaries({}, optional={
    "tenants": st.dictionaries(st.text(max_size=8) | st.sampled_from(["a", "team-b"]), terms | json_values,
                               max_size=3),
    "default": terms | json_values, "unassigned_gpus": json_values}) | json_values)
def test_any_json_is_a_config_or_a_validation_error_with_paths(document: Any) -> None:
    try:
        config = TenantsConfig.of(document)
    except ValidationError as exc:
        assert exc.errors and all(e.path == "" or e.path.startswith("/") for e in exc.errors)
    else:
        assert TenantsConfig.of(config.to_dict()) == config
