"""Issue 17's cheaper offer cycle: the TaskInfo template's prebuilt variable order where a job's own env
names the variables each launch sets, and the record's spec JSON made once per spec."""

from __future__ import annotations

import json

import pytest

from mesos_gpu.core.records import JobRecord, MemberRecord, new_job_record, spec_json
from mesos_gpu.core.taskinfo import LaunchSettings, Placed, build_task_info
from mesos_gpu.core.tasktemplates import TaskInfoTemplate
from mesos_gpu.core.validation import validate_job

CPUS = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"}]


@pytest.mark.parametrize("env", [
    {}, {"PORT0": "mine", "PORTS": "a,b"}, {"PORT0": "mine"},
    {"A": "1", "Z": "2", "PORTS_X": "p", "MESOS_X": "x"},
])
@pytest.mark.parametrize("ports", [(), (31000,), (31000, 31005)])
def test_a_template_sets_attempt_and_ports_over_the_jobs_own_env_as_build_task_info_does(
        env: dict[str, str], ports: tuple[int, ...]) -> None:
    spec = validate_job({"name": "j", "command": "run", "cpus": 1, "mem": 32, "env": env})
    task = spec.tasks("job-1")[0]
    placed = Placed("S1", "host-1", ports, CPUS)
    template = TaskInfoTemplate(spec, task, LaunchSettings())
    for attempt in (0, 3):
        built = template.build(spec, task, attempt, placed)
        assert json.dumps(built) == json.dumps(build_task_info(spec, task, attempt, placed, LaunchSettings()))
        variables = {v["name"]: v["value"] for v in built["command"]["environment"]["variables"]}
        assert variables["MESOS_GPU_ATTEMPT"] == str(attempt)
        assert variables.get("PORT0") == (str(ports[0]) if ports else env.get("PORT0"))


def test_a_records_spec_json_is_the_specs_own_made_once_and_shared() -> None:
    spec = validate_job({"name": "j", "command": "run", "cpus": 1, "mem": 32, "env": {"A": "1"}})
    submitted = new_job_record("job-1", spec, 5.0)
    assert submitted["spec"] == spec.to_dict()
    job = JobRecord.from_dict(submitted, spec)
    assert job.to_dict()["spec"] is submitted["spec"] is spec_json(spec)    # made once, at submission
    assert job.to_dict() == submitted
    other = validate_job(submitted["spec"])         # a recovered job: its own spec, its own JSON
    assert spec_json(other) == spec_json(spec) and spec_json(other) is not spec_json(spec)
    assert other == spec                            # the cache is no field: equality unchanged


def test_a_member_record_is_slotted_and_round_trips() -> None:
    member = MemberRecord(("task", 0), 1, "t-1", None, "S1", "h", (31000,))   # type: ignore[arg-type]
    assert not hasattr(member, "__dict__")
    assert MemberRecord.from_dict(member.key, member.to_dict()) == member
