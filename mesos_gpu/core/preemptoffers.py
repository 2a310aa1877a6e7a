"""What preemption's victims would free, as synthetic offers (pure; used by `mesos_gpu.core.preempt`).

A preemption round plans the waiting job's whole gang on these offers (merged into the cycle's spare
offers, `with_freed`) before anything is killed; they are never accepted.

What a victim frees is what Mesos will offer again once it ended:

- a whole-GPU member: its task's resources (cpus, mem, disk, gpus, ports) on its agent;
- a GPU-share member: its task's cpus, mem and disk only. The GPU belongs to its share host (an executor
  of ours holding one whole GPU), which gives it back only when its LAST share ended and the executor
  exited: so a share host's GPU (and the executor's own `SHARE_HOST_RESOURCES`) counts as freed only
  when every task on it belongs to a victim (`vacated_hosts`). A share ending on a host that keeps other
  shares frees a fraction placement cannot give to anyone through offers, so it is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesos_gpu.core.records import JobRecord
from mesos_gpu.core.sharehosts import ShareHostRecord
from mesos_gpu.core.sharing import SHARE_HOST_RESOURCES
from mesos_gpu.core.tenancyusage import member_gpus

__all__ = ["FreedGpus", "freed_offers", "vacated_hosts", "with_freed"]

JsonDict = dict[str, Any]
_SCALARS = ("cpus", "mem", "disk", "gpus")
WHOLE_GPU = 1000    # thousandths


def vacated_hosts(victims: Sequence[JobRecord],
                  hosts: Mapping[str, ShareHostRecord]) -> list[ShareHostRecord]:
    """The share hosts (not ended nor closing) every task of which belongs to a victim: their GPUs come
    back once the victims ended and the host's executor exited."""
    victim_tasks = {member.task_id for job in victims for member in job.active_members()
                    if member.share is not None and member.task_id is not None}
    wanted = {str(member.share["host"]) for job in victims for member in job.active_members()
              if member.share is not None}
    out = []
    for host_id in sorted(wanted):
        host = hosts.get(host_id)
        if host is None or host.ended or host.closing:
            continue
        if host.tasks and set(host.tasks) <= victim_tasks:
            out.append(host)
    return out


class FreedGpus:
    """What a growing set of victims frees for placement, in GPU thousandths (`add` each job in turn: it
    answers what that job adds): a whole-GPU member its GPUs; a share member nothing, but its share host's
    whole GPU once every task on the host is in the set (as `vacated_hosts` counts)."""

    def __init__(self, jobs: Mapping[str, JobRecord], hosts: Mapping[str, ShareHostRecord]) -> None:
        self.jobs = jobs
        self.hosts = hosts
        self._left: dict[str, int] = {}     # host id -> its tasks not in the set yet

    def add(self, job_id: str) -> int:
        job = self.jobs[job_id]
        freed = 0
        for member in job.active_members():
            if member.share is None:
                freed += member_gpus(job, member.key)
                continue
            host = self.hosts.get(str(member.share["host"]))
            if host is None or host.ended or host.closing or member.task_id not in host.tasks:
                continue
            left = self._left.get(host.host_id, len(host.tasks)) - 1
            self._left[host.host_id] = left
            if left == 0:
                freed += WHOLE_GPU
        return freed

    def total(self, job_ids: Sequence[str]) -> int:
        """What the set `job_ids` frees (on a fresh counter: add each in turn)."""
        return sum(map(self.add, job_ids))


def freed_offers(victims: Sequence[JobRecord], attributes: Mapping[str, list[JsonDict]],
                 hosts: Mapping[str, ShareHostRecord] | None = None) -> list[JsonDict]:
    """Synthetic offers of what `victims`' active members hold, one per agent (see the module docstring;
    `hosts`: the scheduler's share hosts, by id)."""
    totals: dict[str, dict[str, float]] = {}
    hostnames: dict[str, str] = {}
    ports: dict[str, list[int]] = {}
    for job in victims:
        tasks = {task.key: task for task in job.tasks()}
        for member in job.active_members():
            if member.agent_id is None or member.key not in tasks:
                continue
            wanted = tasks[member.key].resources
            total = totals.setdefault(member.agent_id, dict.fromkeys(_SCALARS, 0.0))
            for name in _SCALARS:
                if name != "gpus" or member.share is None:   # a share's GPU is its host's
                    total[name] += float(getattr(wanted, name))
            hostnames[member.agent_id] = member.hostname or member.agent_id
            ports.setdefault(member.agent_id, []).extend(member.ports)
    for host in vacated_hosts(victims, hosts or {}):
        total = totals.setdefault(host.agent_id, dict.fromkeys(_SCALARS, 0.0))
        total["gpus"] += 1.0
        for name, value in SHARE_HOST_RESOURCES.items():
            total[name] += value
        hostnames.setdefault(host.agent_id, host.hostname or host.agent_id)
    return [_offer(agent, hostnames[agent], total, ports.get(agent, []), attributes.get(agent, []))
            for agent, total in sorted(totals.items())]


def _offer(agent: str, hostname: str, total: Mapping[str, float], ports: Sequence[int],
           attributes: list[JsonDict]) -> JsonDict:
    resources: list[JsonDict] = [{"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}
                                 for name, value in total.items() if value > 0]
    if ports:
        ranges = [{"begin": p, "end": p} for p in sorted(set(ports))]
        resources.append({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}, "role": "*"})
    return {"id": {"value": f"preemption-plan-{agent}"}, "agent_id": {"value": agent}, "hostname": hostname,
            "resources": resources, "attributes": attributes}


def with_freed(offers: Sequence[Mapping[str, Any]], freed: Sequence[JsonDict]) -> list[Mapping[str, Any]]:
    """`offers` with each freed offer added: into the offer of the same agent (one offer per agent, its
    unreserved scalars and ports summed), or as an offer of its own."""
    by_agent = {str(offer["agent_id"]["value"]): offer for offer in offers}
    merged: dict[str, Mapping[str, Any]] = dict(by_agent)
    for extra in freed:
        agent = str(extra["agent_id"]["value"])
        offer = by_agent.get(agent)
        merged[agent] = extra if offer is None else _merge(offer, extra)
    return list(merged.values())


def _merge(offer: Mapping[str, Any], extra: Mapping[str, Any]) -> JsonDict:
    resources = [dict(resource) for resource in offer.get("resources", ())]
    for added in extra["resources"]:
        same = next((r for r in resources if r.get("name") == added["name"] and r.get("type") == added["type"]
                     and not r.get("reservations") and not r.get("reservation")), None)
        if same is None:
            resources.append(dict(added))
        elif added["type"] == "SCALAR":
            same["scalar"] = {"value": float(same["scalar"]["value"]) + float(added["scalar"]["value"])}
        else:
            same["ranges"] = {"range": [*same["ranges"]["range"], *added["ranges"]["range"]]}
    return {**offer, "resources": resources}
