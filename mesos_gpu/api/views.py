"""The API's JSON representations (pure): a runtime job view in, the documented shapes out.

`job_json` is `GET /v1/jobs/{id}`, `job_summary` an item of `GET /v1/jobs`, `task_json` an item of
`GET /v1/jobs/{id}/tasks`. Shapes are pinned by `openapi.json` (components/schemas) and its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesos_gpu.core.model import TF_ROLES, JobState

JsonDict = dict[str, Any]

#: Canonical member order (the model's): chief, worker, ps, evaluator, then the lone "task".
_ROLE_ORDER = {role.value: position for position, role in enumerate(TF_ROLES)}

ACTIVE_TASK_STATES = frozenset(
    {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", "TASK_UNKNOWN"}
)


def job_path(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def _member_order(name: str) -> tuple[int, int, str]:
    role, _, index = name.rpartition("-")
    return (_ROLE_ORDER.get(role, len(_ROLE_ORDER)), int(index) if index.isdigit() else 0, name)


def member_names(view: Mapping[str, Any]) -> list[str]:
    """The job's member names ("chief-0", "worker-1", "task-0") in canonical order."""
    return sorted(view.get("members", {}), key=_member_order)


def _role_spec(spec: Mapping[str, Any], role: str) -> Mapping[str, Any]:
    """The part of the spec that holds a member's resources: its role, or the job for a single task."""
    roles = spec.get("roles") or {}
    return roles.get(role, spec) if roles else spec


def task_json(job_id: str, name: str, member: Mapping[str, Any], spec: Mapping[str, Any]) -> JsonDict:
    """One member of a job: its current Mesos task (if launched) and where it runs."""
    role, _, index = name.rpartition("-")
    resources = _role_spec(spec, role)
    hostname = member.get("hostname")
    ports = [int(p) for p in member.get("ports") or ()]
    state = member.get("state")
    return {
        "name": name,
        "role": role,
        "index": int(index) if index.isdigit() else 0,
        "task_id": member.get("task_id"),
        "attempt": member.get("attempt", -1),
        "state": state,
        "active": state in ACTIVE_TASK_STATES,
        "agent_id": member.get("agent_id"),
        "hostname": hostname,
        "ports": ports,
        "address": f"{hostname}:{ports[0]}" if hostname and ports else None,
        "cpus": resources.get("cpus"),
        "mem": resources.get("mem"),
        "gpus": int(resources.get("gpus") or 0),
        "isolation": spec.get("isolation", "exclusive"),
        "containerizer": spec.get("containerizer", "mesos"),
        "message": member.get("message"),
        "reason": member.get("reason"),
        "exit_code": member.get("exit_code"),
        "links": {"logs": f"{job_path(job_id)}/logs?task={name}"},
    }


def tasks_json(view: Mapping[str, Any]) -> list[JsonDict]:
    members = view.get("members", {})
    spec = view.get("spec", {})
    return [task_json(view["id"], name, members[name], spec) for name in member_names(view)]


def tf_cluster(view: Mapping[str, Any]) -> dict[str, list[str | None]] | None:
    """The TF cluster of a distributed job, role -> addresses by index (None where not placed yet);
    None for a single-task job."""
    spec = view.get("spec", {})
    if not spec.get("roles"):
        return None
    members = view.get("members", {})
    cluster: dict[str, list[str | None]] = {}
    for role in TF_ROLES:
        role_spec = spec["roles"].get(role.value)
        if role_spec is None:
            continue
        addresses: list[str | None] = []
        for index in range(int(role_spec.get("instances", 1))):
            member = members.get(f"{role.value}-{index}", {})
            hostname, ports = member.get("hostname"), member.get("ports") or ()
            addresses.append(f"{hostname}:{ports[0]}" if hostname and ports else None)
        cluster[role.value] = addresses
    return cluster


def job_gpus(spec: Mapping[str, Any]) -> int:
    """GPUs the whole job asks for."""
    roles = spec.get("roles") or {}
    if not roles:
        return int(spec.get("gpus") or 0)
    return sum(int(r.get("instances", 1)) * int(r.get("gpus") or 0) for r in roles.values())


def gpus_allocated(view: Mapping[str, Any]) -> int:
    """GPUs held right now by the job's launched, not yet terminal tasks."""
    spec = view.get("spec", {})
    total = 0
    for name, member in view.get("members", {}).items():
        if member.get("state") in ACTIVE_TASK_STATES:
            total += int(_role_spec(spec, name.rpartition("-")[0]).get("gpus") or 0)
    return total


def job_summary(view: Mapping[str, Any]) -> JsonDict:
    """A job in a list: who, what state, why it waits; no per-task detail."""
    spec = view.get("spec", {})
    members = view.get("members", {})
    return {
        "id": view["id"],
        "name": spec.get("name"),
        "tenant": spec.get("tenant"),
        "state": view["state"],
        "message": view.get("message", ""),
        "wait_reason": view.get("wait_reason", ""),
        "submitted_at": view.get("submitted_at"),
        "started_at": view.get("started_at"),
        "finished_at": view.get("finished_at"),
        "task_count": len(members),
        "tasks_running": sum(1 for m in members.values() if m.get("state") == "TASK_RUNNING"),
        "gpus": job_gpus(spec),
        "restarts": view.get("restarts", 0),
        "links": {"self": job_path(view["id"])},
    }


def job_json(view: Mapping[str, Any]) -> JsonDict:
    """A job in full: its spec, state, every task, the reason it waits and its TF cluster."""
    spec = view.get("spec", {})
    job_id = view["id"]
    return {
        **job_summary(view),
        "attempt": view.get("attempt", -1),
        "next_attempt_at": view.get("next_attempt_at"),
        "kill_requested": bool(view.get("kill_requested", False)),
        "isolation": spec.get("isolation", "exclusive"),
        "terminal": JobState(view["state"]).is_terminal,
        "spec": dict(spec),
        "tasks": tasks_json(view),
        "tf_cluster": tf_cluster(view),
        "links": {
            "self": job_path(job_id),
            "tasks": f"{job_path(job_id)}/tasks",
            "logs": f"{job_path(job_id)}/logs",
        },
    }
