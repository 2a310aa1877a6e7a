"""The preemption round (pure): after an offer cycle, stop running jobs so that a waiting one gets its GPUs.

`Preemption.round(state, requests, plan, offers, now)` is called by the state machine after placement,
for the jobs placement said must wait (`WaitReason`; jobs held by their tenant's quota are not claims).
For each such claim, in queue order (highest priority first):

1. `mesos_gpu.core.tenancyvictims.choose_victims` picks the running jobs it may stop (borrowers first,
   then lower priority, fewest GPU-hours lost first), never one already preempted for this claim
   (`spared`: no preemption loops) and never one chosen for an earlier claim of the same round.
2. The whole gang is planned BEFORE anything is killed, with the same planner, on what the victims
   would free (their members' resources on their agents) plus this cycle's offers nobody took. When the
   claim would still not fit, nothing is killed (more victims are not tried: the order is fixed).
3. Each victim goes back to the queue (RESTARTING, ready again as soon as its members ended), WITHOUT
   counting as a restart, whatever its restart policy (a preemption is not a failure, as Kueue requeues
   preempted workloads); its message says who preempted it and why. Its active members get `GracefulKill`
   with `grace_seconds` (Mesos `Call.Kill.kill_policy.grace_period`: SIGTERM, then SIGKILL after it).

Only whole-GPU jobs are victims (a GPU share frees a fraction of a device that placement cannot give to
a whole-GPU gang). Without a tenants config every tenant is treated alike (quota 0), so only priority
decides. The round is in memory: `spared` is lost on failover (a new leader may preempt again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import policy
from mesos_gpu.core.commands import GracefulKill
from mesos_gpu.core.model import JobState, TaskState
from mesos_gpu.core.placement.outcomes import CyclePlan, Plan, WaitReason
from mesos_gpu.core.records import JobRecord, MemberRecord
from mesos_gpu.core.scheduling import GangRequest
from mesos_gpu.core.tenancy import TenantsConfig, gpus_text
from mesos_gpu.core.tenancyusage import member_gpus
from mesos_gpu.core.tenancyvictims import Claim, Running, choose_victims

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState

__all__ = [
    "DEFAULT_GRACE_SECONDS", "Preemption", "ended_in_grace", "freed_offers", "stopped_to_requeue",
    "with_freed",
]

DEFAULT_GRACE_SECONDS = 30.0
PREEMPTED_PREFIX = "preempted by job "
DRAINED_PREFIX = "killed by the GPU profile switch"   # `profilesapply.drain_note`
STOPPED_PREFIXES = (PREEMPTED_PREFIX, DRAINED_PREFIX)

JsonDict = dict[str, Any]


@dataclass
class Preemption:
    """Preemption's settings and memory: the grace period of a victim's kill, and who was preempted for
    whom (claim job id -> victim job ids), so that no job is preempted twice for the same claim."""

    grace_seconds: float = DEFAULT_GRACE_SECONDS
    # The most waiting jobs one round looks at, first in the queue (a round must stay cheap at 10,000
    # pending: each claim sorts the running jobs).
    max_claims: int = 16
    spared: dict[str, set[str]] = field(default_factory=dict)
    # Once a claim's victims have all ended, how long their freed GPUs are waited for (Mesos offers them
    # again after its allocation interval and any decline filter: 2 s while jobs wait) before the claim
    # may preempt anew; claim job id -> when its victims were first seen ended.
    settle_seconds: float = 10.0
    freed_at: dict[str, float] = field(default_factory=dict)
    # The attributes each agent's last offer carried (synthetic offers of freed capacity need them).
    attributes: dict[str, list[JsonDict]] = field(default_factory=dict)

    def round(self, state: SchedulerState, requests: Sequence[GangRequest], plan: CyclePlan,
              offers: Sequence[Mapping[str, Any]], now: float) -> None:
        """One preemption round after placement (see the module docstring); commands go to `state`."""
        claims = [r for r in requests if isinstance(plan.outcomes.get(r.job_id), WaitReason)]
        del claims[self.max_claims:]
        if not claims:
            return
        for claim_id in [c for c in self.spared if c not in state.jobs or state.jobs[c].state.is_terminal]:
            del self.spared[claim_id]   # the memory of claims that ended
            self.freed_at.pop(claim_id, None)
        placed = {job_id for job_id, outcome in plan.outcomes.items() if isinstance(outcome, Plan)}
        running = [job for job in _running(state) if job.job_id not in placed]   # not what it just launched
        if not running:
            return
        for offer in offers:
            self.attributes[str(offer["agent_id"]["value"])] = list(offer.get("attributes", ()))
        taken = {launch.agent_id for launch in plan.accepts}
        spare = [o for o in offers if str(o["agent_id"]["value"]) not in taken]
        config = (state.tenancy() if state.tenancy is not None else None) or TenantsConfig()
        chosen: set[str] = set()
        usage = state.tenant_usage()
        for request in claims:
            job = state.jobs[request.job_id]
            if self._dying(state, job.id, now):
                continue    # its victims are still being killed, or what they freed is not offered yet
            victims = self._victims(job, running=running, config=config, usage=usage, chosen=chosen, now=now)
            if victims is None:
                continue
            extra = freed_offers([state.jobs[v] for v in victims], self.attributes)
            trial = state.planner([_fresh(request)], with_freed(spare, extra), state.share_host_views(now))
            if not isinstance(trial.outcomes.get(job.id), Plan):
                continue    # would still not fit: never preempt for it
            used = {launch.agent_id for launch in trial.accepts}   # the next claim may not count them again
            spare = [o for o in spare if str(o["agent_id"]["value"]) not in used]
            chosen.update(victims)
            self.spared.setdefault(job.id, set()).update(victims)
            for victim_id in victims:
                self._preempt(state, state.jobs[victim_id], job, config=config, usage=usage, now=now)
            for victim_id in victims:     # what the next claim sees: the victims' GPUs are freed
                victim = state.jobs[victim_id]
                gpus = sum(member_gpus(victim, m.key) for m in victim.active_members())
                usage[victim.spec.tenant] = usage.get(victim.spec.tenant, 0) - gpus
            usage[job.spec.tenant] = usage.get(job.spec.tenant, 0) + round(job.spec.total_gpus * 1000)

    def _dying(self, state: SchedulerState, claim_id: str, now: float) -> bool:
        """Whether a job preempted for `claim_id` still has tasks being killed, or all ended less than
        `settle_seconds` ago and one is not placed again yet (its GPUs may not have been offered yet)."""
        jobs = state.jobs
        waiting = [jobs[v] for v in self.spared.get(claim_id, ())
                   if v in jobs and jobs[v].state is JobState.RESTARTING]
        if any(victim.active_members() for victim in waiting):
            self.freed_at.pop(claim_id, None)
            return True
        if not waiting:
            self.freed_at.pop(claim_id, None)
            return False
        return now - self.freed_at.setdefault(claim_id, now) < self.settle_seconds

    def _victims(self, job: JobRecord, *, running: Sequence[Running], config: TenantsConfig,
                 usage: Mapping[str, int], chosen: set[str], now: float) -> tuple[str, ...] | None:
        spec = job.spec
        claim = Claim(job.id, spec.tenant, spec.priority, round(spec.total_gpus * 1000))
        spared = self.spared.get(job.id, set()) | chosen
        return choose_victims(claim, running, config=config, usage=usage, now=now, spared=spared)

    def _preempt(self, state: SchedulerState, victim: JobRecord, claim: JobRecord, *, config: TenantsConfig,
                 usage: Mapping[str, int], now: float) -> None:
        """Requeue `victim` (not a failure) saying who preempted it and why; kill its members gracefully."""
        why = _why(victim, claim, config, usage)
        message = f"{PREEMPTED_PREFIX}{claim.id} ({why}); back in the queue once its tasks ended"
        victim.next_attempt_at = now
        state._set_state(victim, JobState.RESTARTING, now, message)
        for member in victim.members.values():
            if member.is_active and member.task_id is not None:
                state._actions.append(GracefulKill(member.task_id, member.agent_id, self.grace_seconds))



def stopped_to_requeue(job: JobRecord) -> bool:
    """Whether `job` waits in RESTARTING because a preemption or a GPU profile's drain stopped it (its
    message says so) rather than after a failure."""
    return job.state is JobState.RESTARTING and job.message.startswith(STOPPED_PREFIXES)


def ended_in_grace(state: SchedulerState, job: JobRecord, member: MemberRecord, now: float) -> bool:
    """A preempted or drained job's member FINISHED during its grace and the job's success policy is met:
    the job SUCCEEDED (it is not run again). Whether that was the case."""
    if member.state is not TaskState.FINISHED or job.kill_requested or not stopped_to_requeue(job):
        return False
    finished = [m.key for m in job.members.values() if m.state is TaskState.FINISHED]
    if not policy.job_succeeded(job.spec, finished):
        return False
    message = f"succeeded: {member.key} finished while being stopped"
    state._set_state(job, JobState.SUCCEEDED, now, message)
    return True


def _fresh(request: GangRequest) -> GangRequest:
    """The claim's request without held agents (freed capacity is planned as if nothing were held)."""
    return GangRequest(request.job_id, request.spec, request.tasks, reserve=False)


def _why(victim: JobRecord, claim: JobRecord, config: TenantsConfig, usage: Mapping[str, int]) -> str:
    tenant, own = victim.spec.tenant, claim.spec.tenant
    if tenant != own and usage.get(tenant, 0) > config.of_tenant(tenant).quota:
        quota = gpus_text(config.of_tenant(own).quota)
        return (f"{tenant} borrows GPUs beyond its quota; {own} reclaims its guaranteed {quota} GPUs"
                if usage.get(own, 0) + round(claim.spec.total_gpus * 1000) <= config.of_tenant(own).quota
                else f"{tenant} borrows GPUs beyond its quota; priority {claim.spec.priority} > "
                     f"{victim.spec.priority}")
    return f"priority {claim.spec.priority} > {victim.spec.priority}"


def _running(state: SchedulerState) -> list[Running]:
    """The jobs preemption may stop: running or staging, whole GPUs only, not being killed already."""
    seen: dict[str, Running] = {}
    skip: set[str] = set()
    for job_id, _key in state.task_index.values():
        if job_id in seen or job_id in skip:
            continue
        job = state.jobs[job_id]
        if (job.state not in (JobState.RUNNING, JobState.STAGING) or job.kill_requested
                or any(m.share is not None for m in job.members.values())):
            skip.add(job_id)
            continue
        gpus = sum(member_gpus(job, m.key) for m in job.active_members())
        started = job.started_at if job.started_at is not None else job.submitted_at
        seen[job_id] = Running(job_id, job.spec.tenant, job.spec.priority, gpus, started)
    return list(seen.values())


def freed_offers(victims: Sequence[JobRecord], attributes: Mapping[str, list[JsonDict]]) -> list[JsonDict]:
    """Synthetic offers of what `victims`' active members hold, one per agent (never accepted: used only
    to plan a claim before anything is killed)."""
    totals: dict[str, dict[str, float]] = {}
    hostnames: dict[str, str] = {}
    ports: dict[str, list[int]] = {}
    for job in victims:
        tasks = {task.key: task for task in job.tasks()}
        for member in job.active_members():
            if member.agent_id is None or member.key not in tasks:
                continue
            wanted = tasks[member.key].resources
            total = totals.setdefault(member.agent_id, {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0})
            for name in total:
                total[name] += float(getattr(wanted, name))
            hostnames[member.agent_id] = member.hostname or member.agent_id
            ports.setdefault(member.agent_id, []).extend(member.ports)
    return [_offer(agent, hostnames[agent], total, ports[agent], attributes.get(agent, []))
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
