"""The API's JSON representations (pure): a runtime job view in, the documented shapes out.

`job_json` is `GET /v1/jobs/{id}`, `job_summary` an item of `GET /v1/jobs`, `task_json` an item of
`GET /v1/jobs/{id}/tasks`. Shapes are pinned by `openapi.json` (components/schemas) and its tests.

Every task view states its GPU isolation: `gpus` as the job wrote it (whole, a share, or {"min", "max"}),
`isolation` (the member's: the job's level for a share, exclusive otherwise, as `JobSpec.isolation_of`),
`enforced` (what that level enforces and by what: `core.sharing.statement`, plus `in_effect`: what the
share host says it actually enforces for this task, once it has said; None for a task without GPUs:
there is nothing to isolate) and `share` (the grant the member record keeps for a share task, with the
device and the enforcement its share host reported; None otherwise). `devices` names the GPUs the task
runs on ([{"index", "uuid"}], either None where not said) as its executor reported them (the local
agent, the docker executor, a share host: `core.devicelabels`); None when not said: a real Mesos agent's
own executors say nothing, and nothing is guessed. A job's `gpus_text` says its GPUs
for a list without passing a share off as a whole GPU ("1 (4 shares)", "0.3-1 (share)").

Times are epoch seconds (`submitted_at`, ...), each with an ISO-8601 UTC twin (`submitted_at_iso`,
"2026-12-04T12:36:33.250Z"; None where the time is None) for people and tools that read dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mesos_gpu.core.model import TF_ROLES, Isolation, JobState, ResourceRequest
from mesos_gpu.core.sharing import statement

JsonDict = dict[str, Any]

#: Canonical member order (the model's): chief, worker, ps, evaluator, then the lone "task".
_ROLE_ORDER = {role.value: position for position, role in enumerate(TF_ROLES)}

ACTIVE_TASK_STATES = frozenset(
    {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", "TASK_UNKNOWN"}
)


def iso_time(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds ("2026-12-04T12:36:33.250Z"); None stays None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(float(epoch), tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _times(view: Mapping[str, Any], *names: str) -> JsonDict:
    """Each time `name` of the view as epoch seconds and as `name_iso`."""
    out: JsonDict = {}
    for name in names:
        out[name] = view.get(name)
        out[f"{name}_iso"] = iso_time(view.get(name))
    return out


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


def devices_json(member: Mapping[str, Any], share: Mapping[str, Any] | None) -> list[JsonDict] | None:
    """The GPUs a member runs on as reported: a whole-GPU member's `devices`, a share's device (its
    index is not reported); None when nothing was said."""
    devices = member.get("devices")
    if isinstance(devices, list):
        return [{"index": d.get("index"), "uuid": d.get("uuid")} for d in devices if isinstance(d, Mapping)]
    device = (share or {}).get("device")
    return [{"index": None, "uuid": str(device)}] if device else None


def enforced_json(isolation: Isolation, request: ResourceRequest, share: Mapping[str, Any] | None
                  ) -> JsonDict | None:
    """What a member's isolation enforces and by what, with `in_effect`: the share host's own sentence
    for this task once it has reported one; None for a member without GPUs (nothing is isolated)."""
    if not request.is_share and request.whole_gpus == 0:
        return None
    enforced: JsonDict = statement(isolation)
    in_effect = (share or {}).get("enforcement")
    if in_effect:
        enforced["in_effect"] = str(in_effect)
    return enforced


def task_json(job_id: str, name: str, member: Mapping[str, Any], spec: Mapping[str, Any]) -> JsonDict:
    """One member of a job: its current Mesos task (if launched), where it runs, its GPUs and isolation."""
    role, _, index = name.rpartition("-")
    resources = _role_spec(spec, role)
    request = gpu_request(resources)
    isolation = member_isolation(spec, request)
    share = _share_of(member)
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
        "enforced": enforced_json(isolation, request, share),
        "share": share,
        "devices": devices_json(member, share),
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


def _requests(spec: Mapping[str, Any]) -> list[tuple[int, ResourceRequest]]:
    """(instances, GPU request) of each role of the job, or of its single task."""
    roles = spec.get("roles") or {}
    members = [(1, spec)] if not roles else [(int(r.get("instances", 1)), r) for r in roles.values()]
    return [(count, gpu_request(resources)) for count, resources in members]


def _amount(value: float) -> int | float:
    total = round(value, 2)
    return int(total) if total.is_integer() else total


def job_gpus(spec: Mapping[str, Any]) -> int | float:
    """GPUs the whole job asks for (a share counts its fraction, an elastic share its max)."""
    return _amount(sum(count * float(request.gpus) for count, request in _requests(spec)))


def job_gpus_text(spec: Mapping[str, Any]) -> str:
    """The job's GPUs in words for a list: its whole GPUs, then what its shares take in all (a range when
    one is elastic) and how many they are: "2", "0.25 (share)", "0.3-1 (share)", "1 (4 shares)",
    "2 + 0.6-1 (2 shares)"."""
    whole, low, high, shares = 0, 0.0, 0.0, 0
    for count, request in _requests(spec):
        if not request.is_share:
            whole += count * request.whole_gpus
            continue
        shares += count
        low += count * float(request.gpus if request.gpus_min is None else request.gpus_min)
        high += count * float(request.gpus)
    if not shares:
        return str(whole)
    amount = f"{_amount(low)}" if _amount(low) == _amount(high) else f"{_amount(low)}-{_amount(high)}"
    text = f"{amount} ({shares} shares)" if shares > 1 else f"{amount} (share)"
    return f"{whole} + {text}" if whole else text


def gpus_allocated(view: Mapping[str, Any]) -> int:
    """Whole GPUs held right now by the job's launched, not yet terminal tasks (a share task holds none
    itself: its share host's executor holds the GPU)."""
    spec = view.get("spec", {})
    total = 0
    for name, member in view.get("members", {}).items():
        if member.get("state") in ACTIVE_TASK_STATES:
            total += gpu_request(_role_spec(spec, name.rpartition("-")[0])).whole_gpus
    return total


def share_hosts(jobs: Iterable[Mapping[str, Any]]) -> list[JsonDict]:
    """The share hosts holding at least one active share task, derived from the jobs' member records (by
    host id): agent, hostname, isolation, GPU fraction and memory given (MB) of the device's memory (MB,
    0: unknown) and the task ids on it. Each holds one whole GPU. A lingering (empty) host holds no
    active task, so it is not listed: its GPU returns to Mesos within its linger."""
    hosts: dict[str, JsonDict] = {}
    for view in jobs:
        for member in view.get("members", {}).values():
            share = _share_of(member)
            if share is None or member.get("state") not in ACTIVE_TASK_STATES or "host" not in share:
                continue
            host = hosts.setdefault(str(share["host"]), {
                "host": str(share["host"]), "agent_id": member.get("agent_id"),
                "hostname": member.get("hostname"), "isolation": share.get("isolation"),
                "gpus": 0.0, "gpu_memory": 0, "device_memory": int(share.get("device_memory") or 0),
                "tasks": [],
            })
            host["gpus"] = round(host["gpus"] + float(share.get("gpus") or 0), 3)
            host["gpu_memory"] += int(share.get("gpu_memory") or 0)
            host["tasks"].append(member.get("task_id"))
    for host in hosts.values():
        host["tasks"].sort(key=str)
    return [hosts[host_id] for host_id in sorted(hosts)]


def job_summary(view: Mapping[str, Any]) -> JsonDict:
    """A job in a list: who, what state, why it waits; no per-task detail."""
    spec = view.get("spec", {})
    members = view.get("members", {})
    return {
        "id": view["id"],
        "name": spec.get("name"),
        "tenant": spec.get("tenant"),
        "priority": spec.get("priority", 0),
        "state": view["state"],
        "message": view.get("message", ""),
        "wait_reason": view.get("wait_reason", ""),
        **_times(view, "submitted_at", "started_at", "finished_at"),
        "task_count": len(members),
        "tasks_running": sum(1 for m in members.values() if m.get("state") == "TASK_RUNNING"),
        "gpus": job_gpus(spec),
        "gpus_text": job_gpus_text(spec),
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
        **_times(view, "next_attempt_at"),
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
