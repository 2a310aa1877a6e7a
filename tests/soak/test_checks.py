"""The soak's checks can fail: each fed the records of the violation it exists to catch (no cluster, fast)."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.core.devicelabels import mesos_labels
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_DEVICE_INDEX, LABEL_SHARE, LABEL_SHARE_HOST
from tests.soak.audit import Audit
from tests.soak.params import FAULTS, soak_params
from tests.soak.soak import (
    failed_although_finished,
    refused_by_the_master,
    relaunched,
    stored_although_refused,
    stuck,
)


class FakeAgent:
    agent_id = "S0"

    def __init__(self) -> None:
        self.launched: list[Any] = []
        self.updates: list[Any] = []

    def launch(self, framework: Any, task: Any = None, executor: Any = None, task_group: Any = None) -> None:
        self.launched.append((task, task_group))

    def record_update(self, framework_id: str, status: dict[str, Any]) -> None:
        self.updates.append(status)


class FakeMaster:
    def __init__(self) -> None:
        self.refuse = False

    def subscribe(self, call: dict[str, Any], stream: Any, stream_id: str) -> None:
        pass

    def handle_call(self, call: dict[str, Any], stream_id: str | None) -> int:
        if self.refuse:
            raise RuntimeError("wrong stream")
        return 202


def status(task_id: str, state: str, *devices: int) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": {"value": task_id}, "state": state}
    if devices:
        out["labels"] = mesos_labels({LABEL_DEVICE_INDEX: ",".join(map(str, devices))})
    return out


def whole(task_id: str, state: str, *uuids: str) -> dict[str, Any]:
    """A whole-GPU task's status naming its devices as the local agent does (UUIDs and indices)."""
    out = status(task_id, state, *(int(u.rsplit("-", 1)[1]) for u in uuids))
    if uuids:
        out["labels"]["labels"].append({"key": LABEL_DEVICE, "value": ",".join(uuids)})
    return out


def share(task_id: str, state: str, uuid: str, fraction: str, host: str = "host-1") -> dict[str, Any]:
    """A share task's status as its share host reports it (device UUID, share, host; no index)."""
    labels = {LABEL_DEVICE: uuid, LABEL_SHARE: fraction, LABEL_SHARE_HOST: host}
    return {"task_id": {"value": task_id}, "state": state, "labels": mesos_labels(labels)}


def wrapped_agent(audit: Audit, agent_id: str = "S0") -> FakeAgent:
    agent = FakeAgent()
    agent.agent_id = agent_id
    audit._wrap_agent(agent)
    return agent


def test_two_running_tasks_on_one_device_are_a_double_allocation_and_a_freed_device_is_not() -> None:
    audit = Audit()
    agent = wrapped_agent(audit)
    agent.record_update("f", status("a.task-0.0", "TASK_RUNNING", 0, 1))
    agent.record_update("f", status("b.task-0.0", "TASK_FINISHED"))
    agent.record_update("f", status("c.task-0.0", "TASK_RUNNING", 1))
    assert audit.double_allocations == ["S0 GPU 1: a.task-0.0 and c.task-0.0"]
    agent.record_update("f", status("a.task-0.0", "TASK_KILLED"))
    agent.record_update("f", status("c.task-0.0", "TASK_FINISHED"))
    agent.record_update("f", status("d.task-0.0", "TASK_RUNNING", 0, 1))
    assert len(audit.double_allocations) == 1
    assert len(agent.updates) == 6  # the agent still records every update


def test_shares_up_to_one_gpu_on_one_host_pass_and_the_gpu_then_goes_whole_once_they_end() -> None:
    audit = Audit()
    agent = wrapped_agent(audit)
    for task_id, fraction in (("a.task-0.0", "0.5"), ("b.task-0.0", "0.25"), ("c.task-0.0", "0.25")):
        agent.record_update("f", share(task_id, "TASK_RUNNING", "GPU-0", fraction))
    agent.record_update("f", share("a.task-0.0", "TASK_RUNNING", "GPU-0", "0.5"))  # a repeated update
    agent.record_update("f", share("d.task-0.0", "TASK_RUNNING", "GPU-1", "0.5", host="host-2"))
    agent.record_update("f", whole("e.task-0.0", "TASK_RUNNING", "GPU-2"))
    for task_id in ("a.task-0.0", "b.task-0.0", "c.task-0.0"):
        agent.record_update("f", share(task_id, "TASK_FINISHED", "GPU-0", "0"))
    agent.record_update("f", whole("f.task-0.0", "TASK_RUNNING", "GPU-0"))
    agent.record_update("f", share("a.task-0.0", "TASK_RUNNING", "GPU-2", "0.5"))  # late: after its end
    assert (audit.share_violations, audit.double_allocations) == ([], [])
    assert (audit.shares_seen, audit.peak_share) == (4, 1000)
    assert audit.share_gpus & audit.whole_gpus == {("S0", "GPU-0")}  # GPU-2: its share came late


@pytest.mark.parametrize(("updates", "violation"), [
    ([share("a.t-0.0", "TASK_RUNNING", "GPU-0", "0.5"), share("b.t-0.0", "TASK_RUNNING", "GPU-0", "0.75")],
     "S0 GPU GPU-0: shares ['a.t-0.0', 'b.t-0.0'] sum to 1.25 GPU"),
    ([share("a.t-0.0", "TASK_RUNNING", "GPU-0", "0.25"), share("b.t-0.0", "TASK_RUNNING", "GPU-0", "0.25",
                                                                 host="host-2")],
     "S0 GPU GPU-0: shares of 2 share hosts ['host-1', 'host-2'] at once"),
    ([whole("w.t-0.0", "TASK_RUNNING", "GPU-0"), share("a.t-0.0", "TASK_RUNNING", "GPU-0", "0.25")],
     "S0 GPU GPU-0: share a.t-0.0 runs on the GPU given whole to w.t-0.0"),
    ([share("a.t-0.0", "TASK_RUNNING", "GPU-1", "0.25"), whole("w.t-0.0", "TASK_RUNNING", "GPU-0", "GPU-1")],
     "S0 GPU GPU-1 given whole to w.t-0.0 while shares ['a.t-0.0'] run on it"),
    ([share("a.t-0.0", "TASK_RUNNING", "GPU-0", "half")], "a.t-0.0 RUNNING with share 'half'"),
])
def test_each_share_violation_is_reported(updates: list[dict[str, Any]], violation: str) -> None:
    audit = Audit()
    agent = wrapped_agent(audit)
    for update in updates:
        agent.record_update("f", update)
    assert audit.share_violations == [violation]


def test_the_same_gpu_uuid_on_two_agents_is_two_gpus() -> None:
    audit = Audit()
    first, second = wrapped_agent(audit), wrapped_agent(audit, "S1")
    first.record_update("f", share("a.t-0.0", "TASK_RUNNING", "GPU-0", "0.75"))
    second.record_update("f", share("b.t-0.0", "TASK_RUNNING", "GPU-0", "0.75", host="host-2"))
    assert audit.share_violations == []


def test_a_task_id_launched_twice_is_reported_and_a_gang_counts_each_member() -> None:
    audit = Audit()
    agent = wrapped_agent(audit)
    agent.launch({}, task={"task_id": {"value": "a.task-0.0"}})
    group = {"tasks": [{"task_id": {"value": "g.worker-0.0"}}, {"task_id": {"value": "g.worker-1.0"}}]}
    agent.launch({}, executor={}, task_group=group)
    assert audit.duplicates() == []
    agent.launch({}, task={"task_id": {"value": "a.task-0.0"}})
    assert audit.duplicates() == ["a.task-0.0"]
    assert len(agent.launched) == 3


def test_calls_are_traced_to_the_instance_whose_subscription_they_ride_even_when_refused() -> None:
    audit = Audit()
    master = FakeMaster()
    audit._wrap_master(master)
    subscribe = {"subscribe": {"framework_info": {"webui_url": "http://127.0.0.1:1"}}}
    master.subscribe(subscribe, object(), "stream-1")
    assert master.handle_call({"type": "ACCEPT"}, "stream-1") == 202
    master.refuse = True
    with pytest.raises(RuntimeError):
        master.handle_call({"type": "REVIVE"}, "stream-1")
    calls = audit.calls_from("http://127.0.0.1:1", 0, float("inf"))
    assert [(c.kind, c.accepted) for c in calls] == [("SUBSCRIBE", True), ("ACCEPT", True), ("REVIVE", False)]
    assert audit.first_subscribe_after(0, "http://127.0.0.1:1") is None
    assert audit.first_subscribe_after(0, "http://127.0.0.1:2") == calls[0].at
    assert audit.count("TEARDOWN") == 0


def test_a_second_job_of_a_name_submitted_without_a_key_and_refused_with_503_is_reported() -> None:
    ids = ("x-1", "x-2", "y-1", "z-1", "z-2")
    stored = [{"id": job_id, "name": job_id[0], "state": "SUCCEEDED"} for job_id in ids]
    # z's tries include a lost answer (not in `unambiguous`): two jobs are the client's own doing.
    assert stored_although_refused(stored, {"x": "x-2", "y": "y-1"}) == [
        "stored although answered 503: x has jobs ['x-1', 'x-2'], acknowledged x-2"]


def test_a_failed_job_whose_last_attempt_finished_on_every_agent_is_reported() -> None:
    tasks = {"j.task-0.0": "TASK_FAILED", "j.task-0.1": "TASK_FINISHED", "k.task-0.0": "TASK_FAILED",
             "g.worker-0.0": "TASK_FINISHED", "g.worker-1.0": "TASK_FINISHED"}
    found = failed_although_finished({"j": "FAILED", "k": "FAILED", "g": "SUCCEEDED"}, tasks)
    assert found == ["job j FAILED although its agents finished every task of attempt 1"]


def test_the_schedule_is_seeded_starts_with_a_kill_and_the_long_run_kills_at_least_100_leaders() -> None:
    short = soak_params({"MESOS_GPU_SOAK_SEED": "7"})
    assert short.schedule() == soak_params({"MESOS_GPU_SOAK_SEED": "7"}).schedule()
    assert short.schedule()[0] == "kill" and set(short.schedule()) == set(FAULTS)
    long = soak_params({"MESOS_GPU_SOAK": "long", "MESOS_GPU_SOAK_SEED": "7"})
    assert long.leader_kills >= 100 and long.zookeeper_outage == (10.0, 30.0)
    assert sorted(long.schedule()) == sorted(k for k, n in long.counts.items() for _ in range(n))


def test_a_stuck_job_is_described_by_one_view_and_one_that_ended_after_the_last_pass_says_so() -> None:
    # The pass read g RUNNING; the listing after it, g SUCCEEDED with its message: not "RUNNING, succeeded".
    stored = [{"id": "g", "state": "SUCCEEDED", "wait_reason": "", "message": "succeeded: worker-0 finished"},
              {"id": "p", "state": "PENDING", "wait_reason": "no fit", "message": "waiting for offers"}]
    found = stuck({"g": "RUNNING", "p": "PENDING", "s": "SUCCEEDED", "m": "MISSING", "u": "RUNNING"}, stored)
    assert found == [
        "stuck: job g was RUNNING at the drain's last pass, SUCCEEDED when listed after it (wait reason: -; "
        "message: succeeded: worker-0 finished; tasks: -)",
        "stuck: job p is PENDING after the drain (wait reason: no fit; message: waiting for offers; "
        "tasks: -)",
        "stuck: job u is RUNNING after the drain"]


def test_a_restarting_job_counts_as_relaunched_by_its_next_attempt_or_a_later_one_only() -> None:
    # a leader killed between storing attempt 1 and its LAUNCH: the next leader learns TASK_UNKNOWN
    # and launches attempt 2 (the long soak of seed 871587490 at 14:03:35)
    assert relaunched("job-3.task-0.1", {"job-3.task-0.0": 1, "job-3.task-0.2": 1})
    assert relaunched("job-3.task-0.1", {"job-3.task-0.1": 1})
    assert not relaunched("job-3.task-0.1", {"job-3.task-0.0": 1, "job-33.task-0.2": 1, "job-3.task-1.2": 1})


def test_a_task_the_master_refused_is_reported() -> None:
    stored = [{"id": "share-1", "state": "FAILED", "message": "task-0 failed (Total resources ...)",
               "tasks": [{"task_id": "share-1.task-0.0", "state": "TASK_ERROR", "agent_id": "S2"}]},
              {"id": "share-2", "state": "SUCCEEDED", "message": "succeeded",
               "tasks": [{"task_id": "share-2.task-0.1", "state": "TASK_FINISHED", "agent_id": "S2"}]}]
    assert refused_by_the_master(stored) == [
        "refused by the master: task share-1.task-0.0 of job share-1 is TASK_ERROR (task-0 failed (Total "
        "resources ...))"]
