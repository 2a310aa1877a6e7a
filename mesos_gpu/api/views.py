"""The API's JSON representations (pure): a runtime job view in, the documented shapes out.

`job_json` is `GET /v1/jobs/{id}`, `job_summary` an item of `GET /v1/jobs`, `task_json` an item of
`GET /v1/jobs/{id}/tasks`. Shapes are pinned by `openapi.json` (components/schemas) and its tests.

Every task view states its GPU isolation: `gpus` as the job wrote it (whole, a share, or {"min", "max"}),
`isolation` (the member's: the job's level for a share, exclusive otherwise, as `JobSpec.isolation_of`),
`enforced` (what that level enforces and by what: `core.sharing.statement`) and `share` (the grant the
member record keeps for a share task, with the device its share host reported; None otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesos_gpu.core.model import TF_ROLES, Isolation, JobState, ResourceRequest
from mesos_gpu.core.sharing import statement

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


def gpu_request(resources: Mapping[str, Any]) -> ResourceRequest:
    """The GPU part of a member's (canonical) resources: gpus as a number or {"min", "max"}, gpu_memory."""
    gpus = resources.get("gpus") or 0
    memory = resources.get("gpu_memory")
    if isinstance(gpus, Mapping):
        return ResourceRequest(gpus=float(gpus.get("max") or 0), gpus_min=float(gpus.get("min") or 0),
                               gpu_memory=memory)
    return ResourceRequest(gpus=gpus, gpu_memory=memory)


def member_isolation(spec: Mapping[str, Any], request: ResourceRequest) -> Isolation:
    """A member's isolation (as `JobSpec.isolation_of`): the job's level for a share, else exclusive."""
    if not request.is_share:
        return Isolation.EXCLUSIVE
    return Isolation(spec.get("isolation") or Isolation.CAPPED.value)


def _share_of(member: Any) -> JsonDict | None:
    """The share grant a member record keeps (a dict, or an attribute of a record); None when it has none."""
    share = member.get("share") if isinstance(member, Mapping) else getattr(member, "share", None)
    return dict(share) if isinstance(share, Mapping) else None


def task_json(job_id: str, name: str, member: Mapping[str, Any], spec: Mapping[str, Any]) -> JsonDict:
    """One member of a job: its current Mesos task (if launched), where it runs, its GPUs and isolation."""
    role, _, index = name.rpartition("-")
    resources = _role_spec(spec, role)
    request = gpu_request(resources)
    isolation = member_isolation(spec, request)
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
        "gpus": request.gpus_json(),
        "isolation": isolation.value,
        "enforced": statement(isolation),
        "share": _share_of(member),
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


def job_gpus(spec: Mapping[str, Any]) -> int | float:
    """GPUs the whole job asks for (a share counts its fraction, an elastic share its max)."""
    roles = spec.get("roles") or {}
    members = [(1, spec)] if not roles else [(int(r.get("instances", 1)), r) for r in roles.values()]
    total = round(sum(count * float(gpu_request(r).gpus) for count, r in members), 2)
    return int(total) if total.is_integer() else total


def gpus_allocated(view: Mapping[str, Any]) -> int:
    """Whole GPUs held right now by the job's launched, not yet terminal tasks (a share task holds none
    itself: its share host's executor holds the GPU)."""
    spec = view.get("spec", {})
    total = 0
    for name, member in view.get("members", {}).items():
        if member.get("state") in ACTIVE_TASK_STATES:
            total += gpu_request(_role_spec(spec, name.rpartition("-")[0])).whole_gpus
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
