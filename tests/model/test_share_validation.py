"""The job format of GPU shares: gpus (whole, share, elastic), gpu_memory, isolation and uris. Every bad
combination is reported at its JSON path by validate_job, and the published schema agrees (but for the
one documented gap: an elastic share's min <= max)."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from mesos_gpu.core import joblimits as limits
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.model import Isolation, ResourceRequest, Role, RoleSpec, UriSpec
from mesos_gpu.core.validation import JOB_SCHEMA_PATH, validate_job
from tests.model.cases import DELETE, Case, dist, single

SCHEMA = json.loads(resources.files("mesos_gpu").joinpath(JOB_SCHEMA_PATH).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

GPUS = limits.GPUS_MESSAGE
STEP = limits.SHARE_STEP_MESSAGE
BOUND = limits.ELASTIC_BOUND_MESSAGE
SHARES_ONLY = limits.GPU_MEMORY_SHARES_ONLY
EXCLUSIVE = limits.EXCLUSIVE_SHARE_MESSAGE
MIG_ELASTIC = limits.MIG_ELASTIC_MESSAGE
GPU_MEMORY = "must be a whole number from 1 to 1048576"
ISOLATION = limits.ISOLATION_MESSAGE
WITH_ROLES = "not allowed in a job with roles (set it in each role)"


def level_message(level: str) -> str:
    return limits.SHARE_LEVEL_MESSAGE.format(level=level)


ELASTIC = {"min": 0.4, "max": 1}

BAD: list[Case] = [
    # a share's size
    Case("share-too-fine", single(gpus=0.125), [("/gpus", STEP)]),
    Case("share-thousandth", single(gpus=0.001), [("/gpus", STEP)]),
    Case("share-negative", single(gpus=-0.5), [("/gpus", GPUS)]),
    Case("fraction-above-one", single(gpus=2.5), [("/gpus", GPUS)]),
    Case("gpus-list", single(gpus=[0.5]), [("/gpus", GPUS)]),
    Case("gpus-huge", single(gpus=10**400), [("/gpus", GPUS)]),
    Case("gpus-tiny", single(gpus=1e-300), [("/gpus", STEP)]),
    Case("gpus-infinity", single(gpus=float("inf")), [("/gpus", GPUS)]),
    Case("gpus-nan", single(gpus=float("nan")), [("/gpus", GPUS)]),
    Case("gpus-null", single(gpus=None), [("/gpus", GPUS)]),
    Case("gpus-share-as-string", single(gpus="0.5"), [("/gpus", GPUS)]),
    Case("role-share-too-fine", dist({"worker": {"gpus": 0.333}}), [("/roles/worker/gpus", STEP)]),
    # elastic shares
    Case("elastic-no-max", single(gpus={"min": 0.4}), [("/gpus/max", "required")]),
    Case("elastic-no-min", single(gpus={"max": 0.4}), [("/gpus/min", "required")]),
    Case("elastic-empty", single(gpus={}), [("/gpus/min", "required"), ("/gpus/max", "required")]),
    Case("elastic-min-zero", single(gpus={"min": 0, "max": 0.5}), [("/gpus/min", BOUND)]),
    Case("elastic-max-above-one", single(gpus={"min": 0.5, "max": 1.5}), [("/gpus/max", BOUND)]),
    Case("elastic-max-two", single(gpus={"min": 0.5, "max": 2}), [("/gpus/max", BOUND)]),
    Case("elastic-too-fine", single(gpus={"min": 0.425, "max": 0.5}), [("/gpus/min", BOUND)]),
    Case("elastic-string", single(gpus={"min": "0.4", "max": 0.5}), [("/gpus/min", BOUND)]),
    Case("elastic-bool", single(gpus={"min": 0.4, "max": True}), [("/gpus/max", BOUND)]),
    Case(
        "elastic-huge",
        single(gpus={"min": 10**400, "max": -(10**400)}),
        [("/gpus/min", BOUND), ("/gpus/max", BOUND)],
    ),
    Case("elastic-unknown-key", single(gpus={**ELASTIC, "step": 0.1}), [("/gpus/step", "unknown field")]),
    Case(
        "elastic-min-above-max",
        single(gpus={"min": 0.6, "max": 0.4}),
        [("/gpus/min", limits.ELASTIC_ORDER_MESSAGE)],
        schema_rejects=False,
    ),
    Case(
        "role-elastic-bad",
        dist({"worker": {"gpus": {"min": 0.4, "max": 0}}}),
        [("/roles/worker/gpus/max", BOUND)],
    ),
    # gpu_memory
    Case("memory-with-whole-gpu", single(gpus=1, gpu_memory=8192), [("/gpu_memory", SHARES_ONLY)]),
    Case("memory-without-gpus", single(gpu_memory=8192), [("/gpu_memory", SHARES_ONLY)]),
    Case("memory-zero", single(gpus=0.5, gpu_memory=0), [("/gpu_memory", GPU_MEMORY)]),
    Case("memory-fractional", single(gpus=0.5, gpu_memory=1.5), [("/gpu_memory", GPU_MEMORY)]),
    Case("memory-string", single(gpus=0.5, gpu_memory="8G"), [("/gpu_memory", GPU_MEMORY)]),
    Case("memory-bool", single(gpus=0.5, gpu_memory=True), [("/gpu_memory", GPU_MEMORY)]),
    Case("memory-null", single(gpus=0.5, gpu_memory=None), [("/gpu_memory", GPU_MEMORY)]),
    Case("memory-huge", single(gpus=0.5, gpu_memory=2**21), [("/gpu_memory", GPU_MEMORY)]),
    Case(
        "role-memory-with-whole-gpu",
        dist({"chief": {"gpus": 0.5}, "worker": {"gpus": 2, "gpu_memory": 100}}),
        [("/roles/worker/gpu_memory", SHARES_ONLY)],
    ),
    Case("memory-at-top-with-roles", dist(gpu_memory=100), [("/gpu_memory", WITH_ROLES)]),
    # isolation against the members
    Case("isolation-unknown", single(gpus=0.5, isolation="vgpu"), [("/isolation", ISOLATION)]),
    Case("isolation-uppercase", single(gpus=0.5, isolation="MIG"), [("/isolation", ISOLATION)]),
    Case("exclusive-share", single(gpus=0.5, isolation="exclusive"), [("/gpus", EXCLUSIVE)]),
    Case("exclusive-elastic", single(gpus=ELASTIC, isolation="exclusive"), [("/gpus", EXCLUSIVE)]),
    Case(
        "exclusive-with-share-members",
        dist({"chief": {"gpus": 1}, "worker": {"gpus": 0.5}, "ps": {"gpus": 0.25}}, isolation="exclusive"),
        [("/roles/worker/gpus", EXCLUSIVE), ("/roles/ps/gpus", EXCLUSIVE)],
    ),
    *(
        Case(f"{level}-no-share", single(gpus=1, isolation=level), [("/isolation", level_message(level))])
        for level in ("mig", "mps", "capped", "shared")
    ),
    Case("capped-no-gpus", single(isolation="capped"), [("/isolation", level_message("capped"))]),
    Case(
        "shared-roles-without-share",
        dist({"chief": {"gpus": 1}, "worker": {"gpus": 0}}, isolation="shared"),
        [("/isolation", level_message("shared"))],
    ),
    Case(
        "capped-with-a-bad-gpus-reports-the-gpus-only",
        single(gpus=0.125, isolation="capped"),
        [("/gpus", STEP)],
    ),
    Case("mig-elastic", single(gpus=ELASTIC, isolation="mig"), [("/gpus", MIG_ELASTIC)]),
    Case(
        "mig-elastic-role",
        dist({"chief": {"gpus": 0.5}, "worker": {"gpus": {"min": 0.2, "max": 0.3}}}, isolation="mig"),
        [("/roles/worker/gpus", MIG_ELASTIC)],
    ),
    # uris
    Case("uris-not-list", single(uris="https://x/a.tgz"), [("/uris", limits.URIS_MESSAGE)]),
    Case("uris-too-many", single(uris=["https://x/a"] * 65), [("/uris", limits.URIS_MESSAGE)]),
    Case("uri-no-scheme", single(uris=["example.com/a.tgz"]), [("/uris/0", limits.URI_MESSAGE)]),
    Case("uri-space", single(uris=["https://x/a b"]), [("/uris/0", limits.URI_MESSAGE)]),
    Case("uri-empty", single(uris=[""]), [("/uris/0", limits.URI_MESSAGE)]),
    Case("uri-too-long", single(uris=["https://x/" + "a" * 4096]), [("/uris/0", limits.URI_MESSAGE)]),
    Case("uri-number", single(uris=[5]), [("/uris/0", limits.URI_ITEM_MESSAGE)]),
    Case("uri-object-no-value", single(uris=[{"extract": False}]), [("/uris/0/value", "required")]),
    Case(
        "uri-extract-string",
        single(uris=[{"value": "https://x/a", "extract": "yes"}]),
        [("/uris/0/extract", "must be true or false")],
    ),
    Case(
        "uri-executable-number",
        single(uris=["https://x/b", {"value": "https://x/a", "executable": 1}]),
        [("/uris/1/executable", "must be true or false")],
    ),
    Case(
        "uri-unknown-field",
        single(uris=[{"value": "https://x/a", "checksum": "sha256:0"}]),
        [("/uris/0/checksum", "unknown field")],
    ),
    *(
        Case(
            f"output-file-{name}",
            single(uris=[{"value": "https://x/a", "output_file": value}]),
            [("/uris/0/output_file", limits.OUTPUT_FILE_MESSAGE)],
        )
        for name, value in (
            ("absolute", "/etc/passwd"), ("parent", "../a"), ("inner-parent", "a/../../b"), ("dotdot", ".."),
            ("empty", ""), ("number", 3), ("too-long", "a" * 256),
        )
    ),
]


# The isolation cross-field rules are checked by the server only: schemathesis (tests/api/test_fuzz.py)
# cannot generate requests from a schema that combines them with the job's other conditional rules, so
# the schema leaves them out and its description names them.
SERVER_ONLY_ISOLATION_RULES = {
    "exclusive-share", "exclusive-elastic", "exclusive-with-share-members", "mig-no-share", "mps-no-share",
    "capped-no-share", "shared-no-share", "capped-no-gpus", "shared-roles-without-share", "mig-elastic",
    "mig-elastic-role",
}
BAD = [dataclasses.replace(case, schema_rejects=False) if case.id in SERVER_ONLY_ISOLATION_RULES else case
       for case in BAD]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_share_documents_report_every_error_at_its_path(case: Case) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_job(case.doc)
    assert [(e.path, e.message) for e in caught.value.errors] == case.errors


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_the_schema_rejects_them_too_but_for_the_documented_gap(case: Case) -> None:
    assert VALIDATOR.is_valid(case.doc) is not case.schema_rejects


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in BAD}) == len(BAD)


def request(spec: Any) -> ResourceRequest:
    return spec.resources


GOOD: list[tuple[str, dict[str, Any], ResourceRequest, Isolation]] = [
    ("share", single(gpus=0.25), ResourceRequest(gpus=0.25), Isolation.CAPPED),
    ("share-seven-hundredths", single(gpus=0.07), ResourceRequest(gpus=0.07), Isolation.CAPPED),
    ("share-0.99", single(gpus=0.99), ResourceRequest(gpus=0.99), Isolation.CAPPED),
    ("share-with-memory", single(gpus=0.5, gpu_memory=8192), ResourceRequest(gpus=0.5, gpu_memory=8192),
     Isolation.CAPPED),
    ("memory-whole-float", single(gpus=0.5, gpu_memory=8192.0), ResourceRequest(gpus=0.5, gpu_memory=8192),
     Isolation.CAPPED),
    ("elastic", single(gpus=ELASTIC), ResourceRequest(gpus=1.0, gpus_min=0.4), Isolation.CAPPED),
    ("elastic-equal", single(gpus={"min": 0.3, "max": 0.3}, isolation="mps"),
     ResourceRequest(gpus=0.3, gpus_min=0.3), Isolation.MPS),
    ("elastic-with-memory", single(gpus={"min": 0.2, "max": 0.6}, gpu_memory=4096, isolation="shared"),
     ResourceRequest(gpus=0.6, gpus_min=0.2, gpu_memory=4096), Isolation.SHARED),
    ("mig", single(gpus=0.5, isolation="mig"), ResourceRequest(gpus=0.5), Isolation.MIG),
    ("capped", single(gpus=0.5, isolation="capped"), ResourceRequest(gpus=0.5), Isolation.CAPPED),
    ("whole", single(gpus=2.0), ResourceRequest(gpus=2), Isolation.EXCLUSIVE),
    ("whole-explicit", single(gpus=1, isolation="exclusive"), ResourceRequest(gpus=1), Isolation.EXCLUSIVE),
    ("no-gpu", single(gpus=0), ResourceRequest(gpus=0), Isolation.EXCLUSIVE),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "expected", "isolation"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_share_documents(doc: dict[str, Any], expected: ResourceRequest, isolation: Isolation) -> None:
    assert VALIDATOR.is_valid(doc)
    spec = validate_job(doc)
    assert spec.resources == expected
    assert type(spec.resources.gpus) is type(expected.gpus)  # type: ignore[union-attr]
    assert spec.isolation is isolation
    [task] = spec.tasks("j")
    assert task.isolation is (isolation if expected.is_share else Isolation.EXCLUSIVE)
    canonical = spec.to_dict()
    assert canonical["isolation"] == isolation.value
    assert VALIDATOR.is_valid(canonical)
    assert validate_job(json.loads(json.dumps(canonical))) == spec


def test_the_canonical_form_writes_the_gpus_as_the_user_did() -> None:
    assert validate_job(single(gpus=0.25)).to_dict()["gpus"] == 0.25
    assert validate_job(single(gpus=2.0)).to_dict()["gpus"] == 2
    elastic = validate_job(single(gpus={"min": 0.4, "max": 1}, gpu_memory=100)).to_dict()
    assert (elastic["gpus"], elastic["gpu_memory"]) == ({"min": 0.4, "max": 1.0}, 100)
    assert "gpu_memory" not in validate_job(single(gpus=0.5)).to_dict()


def test_a_gang_mixes_whole_and_share_members_each_with_its_isolation() -> None:
    spec = validate_job(
        dist(
            {
                "chief": {"gpus": 1},
                "worker": {"instances": 2, "gpus": 0.5, "gpu_memory": 8000},
                "ps": {"gpus": {"min": 0.2, "max": 0.4}},
                "evaluator": {},
            },
            isolation="mps",
        )
    )
    assert spec.roles[Role.WORKER] == RoleSpec(instances=2, gpus=0.5, gpu_memory=8000)
    assert spec.roles[Role.PS] == RoleSpec(gpus=0.4, gpus_min=0.2)
    assert [(str(t.key), t.isolation) for t in spec.tasks("j")] == [
        ("chief-0", Isolation.EXCLUSIVE),
        ("worker-0", Isolation.MPS),
        ("worker-1", Isolation.MPS),
        ("ps-0", Isolation.MPS),
        ("evaluator-0", Isolation.EXCLUSIVE),
    ]
    assert spec.has_shares and spec.total_gpus == pytest.approx(2.4)
    assert validate_job(spec.to_dict()) == spec


def test_a_gang_without_isolation_gets_capped_for_its_shares() -> None:
    spec = validate_job(dist({"chief": {"gpus": 1}, "worker": {"gpus": 0.25}}))
    assert spec.isolation is Isolation.CAPPED
    assert [t.isolation for t in spec.tasks("j")] == [Isolation.EXCLUSIVE, Isolation.CAPPED]


def test_uris_strings_and_objects_become_uri_specs_and_round_trip() -> None:
    spec = validate_job(
        single(
            uris=[
                "https://example.com/data.tar.gz",
                {"value": "http://nn/model.zip", "extract": False},
                {"value": "/opt/tools/run.sh", "executable": True, "output_file": "run.sh"},
                {"value": "file:///data/x", "output_file": None},
            ]
        )
    )
    assert spec.uris == (
        UriSpec("https://example.com/data.tar.gz"),
        UriSpec("http://nn/model.zip", extract=False),
        UriSpec("/opt/tools/run.sh", executable=True, output_file="run.sh"),
        UriSpec("file:///data/x"),
    )
    canonical = spec.to_dict()
    assert canonical["uris"][0] == {
        "value": "https://example.com/data.tar.gz", "extract": True, "executable": False
    }
    assert canonical["uris"][2]["output_file"] == "run.sh"
    assert VALIDATOR.is_valid(canonical)
    assert validate_job(canonical) == spec


def test_no_uris_are_left_out_of_the_canonical_form() -> None:
    assert "uris" not in validate_job(single()).to_dict()
    assert validate_job(single(uris=[])) == validate_job(single(uris=DELETE))


def test_the_schema_states_what_each_isolation_level_enforces() -> None:
    from mesos_gpu.core.isolationtext import describe

    node = SCHEMA["properties"]["isolation"]
    assert node["enum"] == [level.value for level in Isolation]
    for level in Isolation:
        assert describe(level) in node["description"]


def test_the_schema_lists_every_share_size_exactly() -> None:
    sizes = SCHEMA["$defs"]["gpuShare"]["enum"]
    assert sizes == [n / 100 for n in range(1, 100)]
    assert all(validate_job(single(gpus=size)).resources.gpus == size for size in sizes)  # type: ignore[union-attr]
