"""Builders for scheduler tests: Mesos offers and statuses as JSON, jobs, and a first-fit test planner.

The planner here is deliberately simple (first fit, whole gang or nothing; a GPU share goes to the first
share host of its level with room, else opens one on the first agent with a whole GPU free) so the state
machine's own behaviour is what the tests see; the real planner is tested in tests/placement and wired
in `mesos_gpu.core.scheduling`.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mesos_gpu.core.model import JobSpec, ResourceRequest, TaskSpec
from mesos_gpu.core.placement import AgentLaunch, CyclePlan, Outcome, Plan, TaskPlacement, WaitReason
from mesos_gpu.core.placement.offers import OfferLabels
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, SHARE_HOST_RESOURCES, ShareGrant, ShareHostView, milli
from mesos_gpu.core.state import GangRequest, new_job_record
from mesos_gpu.core.validation import validate_job

_offer_ids = itertools.count(1)


def offer(
    agent: str,
    *,
    cpus: float = 8,
    mem: float = 16384,
    gpus: int = 2,
    ports: tuple[int, int] = (31000, 31099),
    hostname: str | None = None,
    offer_id: str | None = None,
    gpu_memory: int = 0,
    attributes: Mapping[str, str] | None = None,
    allocation_role: str | None = None,
) -> dict[str, Any]:
    """An offer of `agent`; `gpu_memory` (MB) and `attributes` (text) become its attributes;
    `allocation_role` labels every resource with that `allocation_info` (a MULTI_ROLE framework's)."""
    resources: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": ports[0], "end": ports[1]}]},
         "role": "*"},
    ]
    if gpus:
        resources.append({"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}, "role": "*"})
    if allocation_role is not None:
        for resource in resources:
            resource["allocation_info"] = {"role": allocation_role}
    return {
        "id": {"value": offer_id or f"O{next(_offer_ids)}"},
        "framework_id": {"value": "F"},
        "agent_id": {"value": agent},
        "hostname": hostname or f"host-{agent}",
        "resources": resources,
        "attributes": [
            *({"name": name, "type": "SCALAR", "scalar": {"value": memory}}
              for name, memory in {ATTR_GPU_MEMORY: gpu_memory}.items() if memory),
            *({"name": name, "type": "TEXT", "text": {"value": value}}
              for name, value in (attributes or {}).items()),
        ],
    }


def status(
    task_id: str, state: str, *, agent: str = "S1", message: str | None = None, reason: str | None = None,
    with_uuid: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": {"value": task_id},
        "state": state,
        "agent_id": {"value": agent},
        "source": "SOURCE_EXECUTOR" if with_uuid else "SOURCE_MASTER",
        "timestamp": 1.0,
    }
    if with_uuid:
        out["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
    if message is not None:
        out["message"] = message
    if reason is not None:
        out["reason"] = reason
    return out


def single_job(name: str = "one", *, gpus: int = 1, restart: Mapping[str, Any] | None = None,
               **extra: Any) -> JobSpec:
    data: dict[str, Any] = {"name": name, "command": "python train.py", "cpus": 1, "mem": 1024, "gpus": gpus}
    if restart:
        data["restart"] = dict(restart)
    data.update(extra)
    return validate_job(data)


def tf_job(name: str = "dist", *, workers: int = 2, ps: int = 1, chief: int = 1, gpus: int = 1,
           restart: Mapping[str, Any] | None = None, **extra: Any) -> JobSpec:
    roles: dict[str, Any] = {}
    if chief:
        roles["chief"] = {"instances": chief, "cpus": 1, "mem": 1024, "gpus": gpus}
    roles["worker"] = {"instances": workers, "cpus": 1, "mem": 1024, "gpus": gpus}
    if ps:
        roles["ps"] = {"instances": ps, "cpus": 1, "mem": 512}
    data: dict[str, Any] = {"name": name, "image": "tf:latest", "command": "python train.py", "roles": roles}
    if restart:
        data["restart"] = dict(restart)
    data.update(extra)
    return validate_job(data)


def record(job_id: str, spec: JobSpec, now: float = 0.0) -> dict[str, Any]:
    return new_job_record(job_id, spec, now)


def share_job(name: str = "share", *, gpus: float | tuple[float, float] = 0.25, isolation: str = "capped",
              gpu_memory: int | None = None, workers: int = 0, **extra: Any) -> JobSpec:
    """A job of GPU shares: one task (`workers=0`) or `workers` TF workers; `gpus`: a fraction, or
    (min, max) for an elastic share."""
    gmin, gmax = gpus if isinstance(gpus, tuple) else (None, gpus)
    amount: Any = {"min": gmin, "max": gmax} if gmin is not None else gmax
    data: dict[str, Any] = {"name": name, "command": "python train.py", "isolation": isolation}
    if workers:
        data["roles"] = {"worker": {"instances": workers, "cpus": 1, "mem": 1024, "gpus": amount}}
        if gpu_memory is not None:
            data["roles"]["worker"]["gpu_memory"] = gpu_memory
    else:
        data.update(cpus=1, mem=1024, gpus=amount)
        if gpu_memory is not None:
            data["gpu_memory"] = gpu_memory
    data.update(extra)
    return validate_job(data)


def _free(offer_json: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for resource in offer_json["resources"]:
        if resource["type"] == "SCALAR":
            out[resource["name"]] = out.get(resource["name"], 0.0) + resource["scalar"]["value"]
    return out


def _device_memory(offer_json: Mapping[str, Any]) -> int:
    for attribute in offer_json.get("attributes", ()):
        if attribute["name"] == ATTR_GPU_MEMORY:
            return int(attribute["scalar"]["value"])
    return 0


class _Shares:
    """The share hosts as this planner sees them during one gang's trial: views plus hosts it opens."""

    def __init__(self, hosts: Sequence[ShareHostView], device_memory: Mapping[str, int]) -> None:
        self.hosts = {view.host_id: view for view in hosts}
        self.device_memory = device_memory
        self.opened = 0

    def copy(self) -> _Shares:
        other = _Shares((), self.device_memory)
        other.hosts, other.opened = dict(self.hosts), self.opened
        return other

    def grant(self, task: TaskSpec, agent: str, have: dict[str, float]) -> ShareGrant | None:
        """A grant for share `task` on `agent` (whose free resources are `have`), debiting it, or None."""
        request = task.resources
        want, least = milli(request.gpus), milli(request.gpus_min or request.gpus)
        for view in self.hosts.values():
            if view.agent_id != agent or view.isolation is not task.isolation or not view.accepting:
                continue
            gpus = min(want, 1000 - view.used)
            memory = self._memory(request, gpus, view.device_memory)
            if gpus >= least and (not view.device_memory or view.used_memory + memory <= view.device_memory):
                self.hosts[view.host_id] = dataclasses.replace(view, used=view.used + gpus,
                                                               used_memory=view.used_memory + memory)
                return ShareGrant(view.host_id, view.host_id.startswith("new:"), task.isolation, gpus, memory,
                                  view.device_memory)
        opening = {"gpus": 1.0, **SHARE_HOST_RESOURCES}
        if any(have.get(name, 0.0) < value for name, value in opening.items()):
            return None
        for name, value in opening.items():
            have[name] -= value
        self.opened += 1
        device_memory = self.device_memory.get(agent, 0)
        memory = self._memory(request, want, device_memory)
        host_id = f"new:{agent}:{self.opened}"
        self.hosts[host_id] = ShareHostView(host_id, agent, task.isolation, device_memory, want, memory)
        return ShareGrant(host_id, True, task.isolation, want, memory, device_memory)

    @staticmethod
    def _memory(request: ResourceRequest, gpus: int, device_memory: int) -> int:
        return request.gpu_memory if request.gpu_memory is not None else gpus * device_memory // 1000


def _first_fit(task: TaskSpec, need: Mapping[str, float], free: dict[str, dict[str, float]],
               shares: _Shares) -> tuple[str, ShareGrant | None] | None:
    """The first agent with room for `task` (and its share's grant, debited), or None."""
    for agent, have in free.items():
        if not all(have.get(k, 0.0) >= v for k, v in need.items() if v):
            continue
        if not task.resources.is_share:
            return agent, None
        grant = shares.grant(task, agent, have)
        if grant is not None:
            return agent, grant
    return None


def first_fit_planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]],
                      hosts: Sequence[ShareHostView] = ()) -> CyclePlan:
    """Place each gang first-fit over the offers, debiting as it goes; all members or none. Answers as
    the real planner does: placement's `CyclePlan` (one launch per agent, the idle agents declined)."""
    free = {str(o["agent_id"]["value"]): _free(o) for o in offers}
    shares = _Shares(hosts, {str(o["agent_id"]["value"]): _device_memory(o) for o in offers})
    offer_ids: dict[str, list[str]] = {}
    hostnames: dict[str, str] = {}
    labels: dict[str, OfferLabels] = {}
    next_port: dict[str, int] = {}
    for o in offers:
        agent = str(o["agent_id"]["value"])
        offer_ids.setdefault(agent, []).append(str(o["id"]["value"]))
        hostnames[agent] = str(o["hostname"])
        allocated = o["resources"][0].get("allocation_info", {}).get("role")
        labels[agent] = OfferLabels("*", allocated, o["resources"])
        ports = [r for r in o["resources"] if r["name"] == "ports"]
        next_port[agent] = ports[0]["ranges"]["range"][0]["begin"] if ports else 0
    outcomes: dict[str, Outcome] = {}
    placed: dict[str, list[TaskPlacement]] = {}
    for request in requests:
        trial = {agent: dict(values) for agent, values in free.items()}
        trial_ports = dict(next_port)
        trial_shares = shares.copy()
        placements = []
        for task in request.tasks:
            request_ = task.resources
            need = {"cpus": request_.cpus, "mem": request_.mem, "gpus": float(request_.whole_gpus)}
            found = _first_fit(task, need, trial, trial_shares)
            if found is None:
                break
            agent, grant = found
            for k, v in need.items():
                trial[agent][k] = trial[agent].get(k, 0.0) - v
            ports = tuple(range(trial_ports[agent], trial_ports[agent] + task.resources.ports))
            trial_ports[agent] += task.resources.ports
            resources = Resources.of(cpus=request_.cpus, mem=request_.mem, disk=request_.disk,
                                     gpus=request_.whole_gpus)
            placements.append(TaskPlacement(task.name, request.job_id, task.role.value, task.index, agent,
                                            hostnames[agent], ports, resources, labels[agent], grant))
        if len(placements) == len(request.tasks):
            free, next_port, shares = trial, trial_ports, trial_shares
            launches = []
            for agent in dict.fromkeys(p.agent_id for p in placements):
                tasks = tuple(p for p in placements if p.agent_id == agent)
                launches.append(AgentLaunch(agent, hostnames[agent], tuple(offer_ids[agent]), tasks))
                placed.setdefault(agent, []).extend(tasks)
            outcomes[request.job_id] = Plan(request.job_id, tuple(launches))
        else:
            outcomes[request.job_id] = WaitReason(request.job_id, request.tasks[0].name, len(free), ())
    accepts = tuple(AgentLaunch(agent, hostnames[agent], tuple(offer_ids[agent]), tuple(placed[agent]))
                    for agent in offer_ids if agent in placed)
    declines = tuple(o for agent, ids in offer_ids.items() if agent not in placed for o in ids)
    return CyclePlan(outcomes, accepts, declines)
