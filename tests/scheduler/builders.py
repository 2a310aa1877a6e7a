"""Builders for scheduler tests: Mesos offers and statuses as JSON, jobs, and a first-fit test planner.

The planner here is deliberately simple (first fit, whole gang or nothing) so the state machine's own
behaviour is what the tests see; the real planner is tested in tests/placement and wired in
`mesos_gpu.core.scheduling`.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mesos_gpu.core.model import JobSpec
from mesos_gpu.core.placement import AgentLaunch, CyclePlan, Outcome, Plan, TaskPlacement, WaitReason
from mesos_gpu.core.resources import Resources
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
) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": ports[0], "end": ports[1]}]},
         "role": "*"},
    ]
    if gpus:
        resources.append({"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}, "role": "*"})
    return {
        "id": {"value": offer_id or f"O{next(_offer_ids)}"},
        "framework_id": {"value": "F"},
        "agent_id": {"value": agent},
        "hostname": hostname or f"host-{agent}",
        "resources": resources,
        "attributes": [],
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


def _free(offer_json: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for resource in offer_json["resources"]:
        if resource["type"] == "SCALAR":
            out[resource["name"]] = out.get(resource["name"], 0.0) + resource["scalar"]["value"]
    return out


def first_fit_planner(requests: Sequence[GangRequest], offers: Sequence[Mapping[str, Any]]) -> CyclePlan:
    """Place each gang first-fit over the offers, debiting as it goes; all members or none. Answers as
    the real planner does: placement's `CyclePlan` (one launch per agent, the idle agents declined)."""
    free = {str(o["agent_id"]["value"]): _free(o) for o in offers}
    offer_ids: dict[str, list[str]] = {}
    hostnames: dict[str, str] = {}
    next_port: dict[str, int] = {}
    for o in offers:
        agent = str(o["agent_id"]["value"])
        offer_ids.setdefault(agent, []).append(str(o["id"]["value"]))
        hostnames[agent] = str(o["hostname"])
        ports = [r for r in o["resources"] if r["name"] == "ports"]
        next_port[agent] = ports[0]["ranges"]["range"][0]["begin"] if ports else 0
    outcomes: dict[str, Outcome] = {}
    placed: dict[str, list[TaskPlacement]] = {}
    for request in requests:
        trial = {agent: dict(values) for agent, values in free.items()}
        trial_ports = dict(next_port)
        placements = []
        for task in request.tasks:
            request_ = task.resources
            need = {"cpus": request_.cpus, "mem": request_.mem, "gpus": float(request_.gpus)}
            agent = next(
                (a for a, have in trial.items() if all(have.get(k, 0.0) >= v for k, v in need.items() if v)),
                None,
            )
            if agent is None:
                break
            for k, v in need.items():
                trial[agent][k] = trial[agent].get(k, 0.0) - v
            ports = tuple(range(trial_ports[agent], trial_ports[agent] + task.resources.ports))
            trial_ports[agent] += task.resources.ports
            resources = Resources.of(cpus=request_.cpus, mem=request_.mem, disk=request_.disk,
                                     gpus=request_.gpus)
            placements.append(TaskPlacement(task.name, request.job_id, task.role.value, task.index, agent,
                                            hostnames[agent], ports, resources))
        if len(placements) == len(request.tasks):
            free, next_port = trial, trial_ports
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
