"""The GPU map (pure, `mesos_gpu.api.gpumap`): one cell per GPU the master lists, each holding what the
scheduler's job views say, placed by reported index, never beyond what is known."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.api.gpumap import WAITING_LISTED, gpu_map


def agent(agent_id: str, hostname: str, gpus: int, used: int = 0, **attributes: Any) -> dict[str, Any]:
    return {"id": agent_id, "hostname": hostname, "active": True,
            "resources": {"gpus": float(gpus), "cpus": 8.0}, "used_resources": {"gpus": float(used)},
            "attributes": {"gpu_model": "A100", "gpu_memory_mb": 40960.0, **attributes}}


def whole_job(job_id: str, agent_id: str, devices: list[dict[str, Any]] | None, *, gpus: int = 1,
              tenant: str = "default", state: str = "TASK_RUNNING") -> dict[str, Any]:
    member: dict[str, Any] = {"task_id": f"{job_id}.task-0.0", "attempt": 0, "state": state,
                              "agent_id": agent_id, "hostname": "h"}
    if devices is not None:
        member["devices"] = devices
    return {"id": job_id, "state": "RUNNING", "spec": {"name": job_id, "command": "x", "gpus": gpus,
            "tenant": tenant, "priority": 3}, "members": {"task-0": member}}


def share_job(job_id: str, agent_id: str, host: str, device: str, count: int, *, gpus: float = 0.25,
              memory: int = 1024) -> dict[str, Any]:
    members = {}
    for i in range(count):
        members[f"worker-{i}"] = {
            "task_id": f"{job_id}.worker-{i}.0", "attempt": 0, "state": "TASK_RUNNING", "agent_id": agent_id,
            "hostname": "h", "share": {"host": host, "isolation": "capped", "gpus": gpus,
                                       "gpu_memory": memory, "device_memory": 40960, "device": device},
        }
    return {"id": job_id, "state": "RUNNING", "members": members, "spec": {
        "name": job_id, "command": "x", "isolation": "capped", "tenant": "team-a",
        "roles": {"worker": {"instances": count, "gpus": gpus, "gpu_memory": memory}}}}


def cells(result: dict[str, Any], hostname: str) -> list[dict[str, Any]]:
    return next(a for a in result["agents"] if a["hostname"] == hostname)["gpus"]


def test_every_gpu_of_every_agent_is_a_cell_and_an_idle_cluster_is_free() -> None:
    result = gpu_map({"slaves": [agent("S1", "b", 4), agent("S0", "a", 2), agent("S2", "c", 0)]}, [])
    assert [a["hostname"] for a in result["agents"]] == ["a", "b", "c"]
    assert [len(a["gpus"]) for a in result["agents"]] == [2, 4, 0]
    assert result["gpus"] == {"total": 6, "whole": 0, "shared": 0, "other": 0, "free": 6}
    assert [c["index"] for c in cells(result, "b")] == [0, 1, 2, 3]
    assert cells(result, "a")[0] == {"state": "free", "index": 0, "index_reported": False, "uuid": None,
                                     "tasks": [], "share": None}
    first = result["agents"][0]
    assert (first["model"], first["gpu_memory_mb"]) == ("A100", 40960)
    assert (first["mps"], first["mig"]) == (False, None)


def test_a_whole_gpu_task_sits_at_its_reported_index() -> None:
    job = whole_job("j1", "S0", [{"index": 2, "uuid": "GPU-2"}], tenant="team-b")
    result = gpu_map({"slaves": [agent("S0", "a", 4, used=1)]}, [job])
    held = cells(result, "a")[2]
    assert (held["state"], held["index_reported"], held["uuid"]) == ("whole", True, "GPU-2")
    assert held["tasks"][0]["job"] == "j1" and held["tasks"][0]["task"] == "task-0"
    assert held["tasks"][0]["tenant"] == "team-b" and held["tasks"][0]["priority"] == 3
    assert [c["state"] for c in cells(result, "a")] == ["free", "free", "whole", "free"]
    assert result["tenants"] == ["team-b"] and result["jobs"] == ["j1"]


def test_a_task_whose_executor_reported_no_device_takes_unnumbered_cells() -> None:
    job = whole_job("j1", "S0", None, gpus=2)
    result = gpu_map({"slaves": [agent("S0", "a", 3, used=2)]}, [job])
    states = [(c["state"], c["index_reported"]) for c in cells(result, "a")]
    assert states == [("whole", False), ("whole", False), ("free", False)]


def test_shares_of_one_share_host_fill_one_cell_with_their_sum_and_what_is_left() -> None:
    result = gpu_map({"slaves": [agent("S0", "a", 2, used=1)]}, [share_job("s1", "S0", "host-1", "GPU-x", 3)])
    shared = cells(result, "a")[0]
    assert shared["state"] == "shared" and len(shared["tasks"]) == 3 and shared["uuid"] == "GPU-x"
    assert shared["share"] == {"host": "host-1", "isolation": "capped", "gpus": 0.75, "gpu_memory": 3072,
                               "device_memory": 40960, "gpus_free": 0.25, "gpu_memory_free": 37888}
    assert shared["index_reported"] is False  # a share host reports the UUID only
    assert result["gpus"]["shared"] == 1 and result["gpus"]["free"] == 1


def test_a_share_host_is_placed_at_the_index_another_task_reported_for_its_uuid() -> None:
    # A (finished) whole task is not shown, so only an active one can tell the index; here one does.
    whole = whole_job("w", "S0", [{"index": 0, "uuid": "GPU-0"}])
    shares = share_job("s", "S0", "host-1", "GPU-0", 1)  # inconsistent on purpose: both claim GPU-0
    result = gpu_map({"slaves": [agent("S0", "a", 2, used=2)]}, [whole, shares])
    assert [c["state"] for c in cells(result, "a")] == ["whole", "shared"]
    assert cells(result, "a")[1]["index_reported"] is False  # its reported cell was taken: not claimed


def test_gpus_mesos_counts_used_that_no_task_of_ours_holds_are_other() -> None:
    job = whole_job("j1", "S0", [{"index": 0, "uuid": "GPU-0"}])
    result = gpu_map({"slaves": [agent("S0", "a", 4, used=3)]}, [job])
    assert [c["state"] for c in cells(result, "a")] == ["whole", "other", "other", "free"]


@pytest.mark.parametrize("state", ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", None])
def test_tasks_that_are_not_active_hold_nothing(state: str | None) -> None:
    job = whole_job("j1", "S0", [{"index": 0, "uuid": "GPU-0"}], state=state)  # type: ignore[arg-type]
    result = gpu_map({"slaves": [agent("S0", "a", 1)]}, [job])
    assert cells(result, "a")[0]["state"] == "free" and result["jobs"] == []


def test_tasks_on_an_agent_the_master_does_not_list_get_their_own_row() -> None:
    job = whole_job("j1", "gone", [{"index": 1, "uuid": "GPU-1"}])
    result = gpu_map({"slaves": []}, [job])
    (row,) = result["agents"]
    assert row["known"] is False and row["active"] is False and row["id"] == "gone"
    assert [c["state"] for c in row["gpus"]] == ["whole"]


def test_waiting_jobs_are_counted_and_the_first_listed_with_their_reason() -> None:
    waiting = [{"id": f"w{i}", "state": "PENDING", "wait_reason": f"reason {i}", "members": {},
                "spec": {"name": "w", "command": "x", "gpus": 8, "tenant": "t"}} for i in range(40)]
    result = gpu_map({"slaves": []}, [], waiting, 40)
    assert result["waiting"]["total"] == 40 and len(result["waiting"]["jobs"]) == WAITING_LISTED
    first = result["waiting"]["jobs"][0]
    assert first == {"job": "w0", "job_name": "w", "tenant": "t", "priority": 0, "gpus_text": "8",
                     "wait_reason": "reason 0"}
    assert result["tenants"] == ["t"]


def test_an_inactive_or_deactivated_agent_says_so() -> None:
    down = dict(agent("S0", "a", 1), active=False)
    drained = dict(agent("S1", "b", 1), deactivated=True)
    result = gpu_map({"slaves": [down, drained]}, [])
    assert [a["active"] for a in result["agents"]] == [False, False]


@settings(max_examples=60, deadline=None)
@given(
    gpus=st.lists(st.integers(0, 8), min_size=1, max_size=4),
    placements=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.booleans()), max_size=12),
    used_extra=st.integers(0, 3),
)
def test_cells_never_lose_a_gpu_or_an_allocation(
    gpus: list[int], placements: list[tuple[int, int, bool]], used_extra: int
) -> None:
    """Whatever tasks report: every GPU the master lists is a cell, every active allocation is in one
    cell, indices are 0..n-1 per agent, and cells are only added (never dropped) for extra allocations."""
    slaves = [agent(f"S{i}", f"h{i}", n, used=min(n, used_extra)) for i, n in enumerate(gpus)]
    jobs = []
    for k, (agent_index, device, reported) in enumerate(placements):
        agent_id = f"S{agent_index % len(gpus)}"
        jobs.append(whole_job(f"j{k}", agent_id, [{"index": device, "uuid": f"U{k}"}] if reported else None))
    result = gpu_map({"slaves": slaves}, jobs)
    for row in result["agents"]:
        assert [c["index"] for c in row["gpus"]] == list(range(len(row["gpus"])))
        assert len(row["gpus"]) >= row["gpus_total"]
    held = [t["job"] for row in result["agents"] for c in row["gpus"] for t in c["tasks"]]
    assert sorted(held) == sorted(job["id"] for job in jobs)
    assert result["gpus"]["total"] == sum(len(row["gpus"]) for row in result["agents"])
    assert sum(v for k, v in result["gpus"].items() if k != "total") == result["gpus"]["total"]
