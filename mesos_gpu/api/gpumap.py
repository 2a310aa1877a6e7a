"""The GPU map (pure): every agent the Mesos master knows, each of its GPUs as one cell, and what holds it.

`gpu_map(master_state, active_jobs, waiting_jobs, waiting_total)` is the body of `GET /v1/cluster/map`
(served by `mesos_gpu.api.web`, polled by the web page). Its inputs are the master's `/state` (agents,
their `gpus` resources and attributes) and the scheduler's job views (`SchedulerRuntime.job`'s shape).

A cell is one whole GPU of an agent. What it holds, from what the scheduler knows, never guessed:

* `whole`: tasks of ours that hold the GPU whole. Its `index` is the NVML index the task's executor
  reported (`devices`); a whole-GPU task whose executor reported none (a real Mesos agent's own
  executors) takes the next unnumbered cell, `index_reported: false`.
* `shared`: a share host (one whole GPU) and its share tasks: fraction and memory given, isolation,
  free fraction and memory. Share hosts report the device's UUID, not its index: the cell of a share
  host is placed by UUID when another task reported that UUID with its index, else it takes the next
  unnumbered cell (`index_reported: false`).
* `other`: Mesos counts the GPU used (`used_resources`) but no active task of ours holds it: another
  framework's task, a share host lingering empty before it gives its GPU back, or a task that just
  ended (the master's state is read at most every few seconds).
* `free`: none of the above.

Health: Mesos reports none per GPU; the agent's `active` flag is all there is, and the map says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.api.mesos import _flat_attributes, _scalar
from mesos_gpu.api.views import job_gpus_text, member_names, task_json
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, ATTR_GPU_MIG, ATTR_GPU_MPS

JsonDict = dict[str, Any]

#: The attribute that names an agent's GPU model (as `GET /v1/cluster` reads it).
ATTR_GPU_MODEL = "gpu_model"
#: How many waiting jobs the map lists with their reasons (it counts them all).
WAITING_LISTED = 25


@dataclass
class _Agent:
    """One agent row while the map is built."""

    info: JsonDict
    gpus_total: int
    gpus_used: int
    cells: list[JsonDict | None] = field(default_factory=list)
    unplaced: list[JsonDict] = field(default_factory=list)  # allocations without a known index


def _task_entry(job: Mapping[str, Any], task: Mapping[str, Any]) -> JsonDict:
    """What a cell says about one task of a job."""
    spec = job.get("spec", {})
    share = task.get("share") or {}
    return {
        "job": job["id"],
        "job_name": spec.get("name"),
        "tenant": spec.get("tenant"),
        "priority": spec.get("priority", 0),
        "task": task["name"],
        "task_id": task.get("task_id"),
        "state": task.get("state"),
        "gpus": share.get("gpus", task.get("gpus")),
        "gpu_memory": share.get("gpu_memory"),
        "isolation": task.get("isolation"),
        "enforced": (task.get("enforced") or {}).get("in_effect"),
    }


def active_tasks(jobs: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], JsonDict]]:
    """(job, task view) for every active (launched, not terminal) task of `jobs` that uses a GPU."""
    found = []
    for job in jobs:
        members, spec = job.get("members", {}), job.get("spec", {})
        for name in member_names(job):
            task = task_json(job["id"], name, members[name], spec)
            if task["active"] and task["enforced"] is not None:  # enforced is None without GPUs
                found.append((job, task))
    return found


def _agent_row(agent: Mapping[str, Any]) -> _Agent:
    attributes = _flat_attributes(agent.get("attributes"))
    total = int(_scalar(agent.get("resources", {}), "gpus"))
    used = int(_scalar(agent.get("used_resources", {}), "gpus"))
    memory = attributes.get(ATTR_GPU_MEMORY)
    info = {
        "id": agent.get("id"),
        "hostname": agent.get("hostname"),
        "active": bool(agent.get("active", True)) and not bool(agent.get("deactivated", False)),
        "known": True,
        "model": str(attributes[ATTR_GPU_MODEL]) if attributes.get(ATTR_GPU_MODEL) is not None else None,
        "gpu_memory_mb": int(memory) if isinstance(memory, int | float) and memory > 0 else None,
        "mps": str(attributes.get(ATTR_GPU_MPS, "")).lower() == "true",
        "mig": str(attributes.get(ATTR_GPU_MIG) or "") or None,
        "gpus_total": total,
        "gpus_used_mesos": used,
    }
    return _Agent(info, total, used, [None] * total)


def _unknown_agent(agent_id: str, hostname: str | None) -> _Agent:
    """A row for tasks on an agent the master's state does not list (gone, or not read yet)."""
    info = {"id": agent_id, "hostname": hostname, "active": False, "known": False, "model": None,
            "gpu_memory_mb": None, "mps": False, "mig": None, "gpus_total": 0, "gpus_used_mesos": 0}
    return _Agent(info, 0, 0, [])


def _allocations(tasks: list[tuple[Mapping[str, Any], JsonDict]]) -> dict[str, list[JsonDict]]:
    """Per agent id, the allocations of its GPUs: one per whole GPU of a task, one per share host."""
    per_agent: dict[str, list[JsonDict]] = {}
    hosts: dict[str, JsonDict] = {}
    for job, task in tasks:
        agent = str(task.get("agent_id"))
        entry = _task_entry(job, task)
        share = task.get("share")
        if share is not None and "host" in share:
            host = hosts.get(str(share["host"]))
            if host is None:
                host = hosts[str(share["host"])] = _share_cell(share, task)
                per_agent.setdefault(agent, []).append(host)
            host["tasks"].append(entry)
            host["share"]["gpus"] = round(host["share"]["gpus"] + float(share.get("gpus") or 0), 3)
            host["share"]["gpu_memory"] += int(share.get("gpu_memory") or 0)
            continue
        devices = task.get("devices") or []
        whole = int(task["gpus"]) if isinstance(task["gpus"], int | float) else 0
        for position in range(max(whole, len(devices))):
            device = devices[position] if position < len(devices) else {}
            per_agent.setdefault(agent, []).append({
                "state": "whole", "index": device.get("index"), "uuid": device.get("uuid"),
                "hostname": task.get("hostname"), "tasks": [entry], "share": None,
            })
    for host in hosts.values():
        share = host["share"]
        share["gpus_free"] = round(max(1.0 - share["gpus"], 0.0), 3)
        device_memory = share["device_memory"]
        share["gpu_memory_free"] = max(device_memory - share["gpu_memory"], 0) if device_memory else None
    return per_agent


def _share_cell(share: Mapping[str, Any], task: Mapping[str, Any]) -> JsonDict:
    device = str(share.get("device") or "") or None
    return {
        "state": "shared", "index": None, "uuid": device, "hostname": task.get("hostname"), "tasks": [],
        "share": {"host": str(share["host"]), "isolation": share.get("isolation"), "gpus": 0.0,
                  "gpu_memory": 0, "device_memory": int(share.get("device_memory") or 0)},
    }


def _place(row: _Agent, allocations: list[JsonDict], uuid_index: Mapping[str, int]) -> None:
    """Put each allocation in its cell: by reported index, else by a UUID another task reported with its
    index, else into the next free cell (index not reported)."""
    for allocation in allocations:
        index = allocation["index"]
        if index is None and allocation["uuid"] in uuid_index:
            index = uuid_index[allocation["uuid"]]
        if isinstance(index, int) and 0 <= index < len(row.cells) and row.cells[index] is None:
            row.cells[index] = dict(allocation, index=index, index_reported=True)
        else:
            row.unplaced.append(dict(allocation, index_reported=False))
    for allocation in row.unplaced:
        free = next((i for i, cell in enumerate(row.cells) if cell is None), None)
        if free is None:  # more allocations than the master says the agent has: show them anyway
            row.cells.append(dict(allocation, index=len(row.cells)))
        else:
            row.cells[free] = dict(allocation, index=free)
    taken = sum(1 for cell in row.cells if cell is not None)
    others = max(row.gpus_used - taken, 0)
    for i, cell in enumerate(row.cells):
        if cell is None:
            state = "other" if others > 0 else "free"
            others -= state == "other"
            row.cells[i] = {"state": state, "index": i, "index_reported": False, "uuid": None,
                            "tasks": [], "share": None}


def _waiting(jobs: Iterable[Mapping[str, Any]]) -> list[JsonDict]:
    return [{
        "job": job["id"], "job_name": job.get("spec", {}).get("name"),
        "tenant": job.get("spec", {}).get("tenant"), "priority": job.get("spec", {}).get("priority", 0),
        "gpus_text": job_gpus_text(job.get("spec", {})),
        "wait_reason": job.get("wait_reason") or job.get("message") or "",
    } for job in jobs]


def gpu_map(
    master_state: Mapping[str, Any],
    active_jobs: Iterable[Mapping[str, Any]],
    waiting_jobs: Iterable[Mapping[str, Any]] = (),
    waiting_total: int = 0,
) -> JsonDict:
    """The map: agents (by hostname) with one cell per GPU, totals, tenants and jobs on it, and the
    first WAITING_LISTED waiting jobs with their reasons (`waiting_total` counts them all)."""
    rows = {str(a.get("id")): _agent_row(a) for a in master_state.get("slaves", ())}
    tasks = active_tasks(active_jobs)
    uuid_index = {str(d["uuid"]): int(d["index"]) for _, task in tasks for d in task.get("devices") or ()
                  if d.get("uuid") and isinstance(d.get("index"), int)}
    for agent_id, allocations in _allocations(tasks).items():
        row = rows.get(agent_id)
        if row is None:
            row = rows[agent_id] = _unknown_agent(agent_id, allocations[0].get("hostname"))
        _place(row, allocations, uuid_index)
    for row in rows.values():
        if any(cell is None for cell in row.cells):
            _place(row, [], uuid_index)
    agents = sorted(rows.values(), key=lambda r: (str(r.info["hostname"] or ""), str(r.info["id"])))
    counts = {"total": 0, "whole": 0, "shared": 0, "other": 0, "free": 0}
    out_agents = []
    for row in agents:
        cells = [cell for cell in row.cells if cell is not None]
        for cell in cells:
            cell.pop("hostname", None)
            counts[cell["state"]] += 1
        counts["total"] += len(cells)
        out_agents.append({**row.info, "gpus": cells})
    listed = list(waiting_jobs)[:WAITING_LISTED]
    waiting = _waiting(listed)
    tenants = {str(e["tenant"]) for e in _entries(out_agents) if e["tenant"]}
    tenants |= {str(w["tenant"]) for w in waiting if w["tenant"]}
    return {
        "agents": out_agents,
        "gpus": counts,
        "tenants": sorted(tenants),
        "jobs": sorted({str(e["job"]) for e in _entries(out_agents)}),
        "waiting": {"total": max(waiting_total, len(listed)), "jobs": waiting},
        "health": "Mesos reports no per-GPU health; an agent's 'active' flag is what the master says",
    }


def _entries(agents: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for agent in agents:
        for cell in agent["gpus"]:
            yield from cell["tasks"]
