"""The preemption round (pure): stop running jobs so that a waiting one gets its GPUs.

`Preemption.round(state, requests, plan, offers, now, held=)` is called by the state machine after each
offer cycle in which jobs wait: the claims are the jobs placement said must wait (`WaitReason`) and the
jobs their tenant's quota held (`held`). `Preemption.on_tick(state, now)` runs a round on a Tick when no
round ran for `idle_seconds` (a cluster with nothing unallocated gets no offers at all: without it, the
waiting jobs of a full cluster would never preempt). For each claim, in queue order (highest priority
first, at most `max_claims`):

1. Victims: for a claim placement held, `mesos_gpu.core.tenancyvictims.choose_victims` (borrowers first,
   then lower priority, fewest GPU-hours lost first); for a claim its quota held (its tenant at its limit,
   or unable to borrow more), `choose_own_victims`: only its own tenant's lower-priority jobs, and only so
   many that its tenant then admits it without using more than it does now (or its quota): Kueue's
   `withinClusterQueue: LowerPriority`. Never a job already preempted for this claim (`spared`: no
   preemption loops; persisted in the victim's record as `preempted_for`, so a new leader knows it), nor
   one chosen for an earlier claim of the same round. GPU-share jobs may be victims: their share counts in
   GPU thousandths for quotas, but for placement a share host's GPU is freed only when every share on it
   is a victim (`mesos_gpu.core.preemptoffers`): the victims are chosen by what the chosen SET frees
   (`FreedGpus`), first needing the claim's GPUs less those idle in the spare offers, then all of them;
   when the share victims chosen first do not make the gang fit, the choice is made again among whole-GPU
   jobs only.
2. The whole gang is planned BEFORE anything is killed, with the same planner, on what the victims
   would free plus this cycle's offers nobody took, the share hosts they vacate left out (a GPU profile
   keeps GPUs for share hosts again once those are gone). When the claim would still not fit, nothing is
   killed. Victims it fits without are then left out (`_prune`: the dearest first, each planned again).
   Freed capacity carries its agents' attributes: those of each agent's last offer (`note_offers`, every
   offer cycle), else the agent catalog's (`catalog`).
3. Each victim goes back to the queue (RESTARTING, ready again as soon as its members ended), WITHOUT
   counting as a restart, whatever its restart policy (a preemption is not a failure, as Kueue requeues
   preempted workloads); its message says who preempted it and why. Its active members get `GracefulKill`
   with `grace_seconds` (Mesos `Call.Kill.kill_policy.grace_period`: SIGTERM, then SIGKILL after it);
   after a reconnection those kills are sent again with the same grace (`kill_again`). A share host all of
   whose shares are victims takes no new share (it is marked closing: placement still sees it, not
   accepting, until its executor exits at its linger and its GPU is offered again; a new leader marks it
   again from the stopped jobs' records, `ShareHosts.restore`), and the claim waits that linger longer
   before it may preempt anew.

Without a tenants config every tenant is treated alike (quota 0), so only priority decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from mesos_gpu.core import policy
from mesos_gpu.core.commands import GracefulKill
from mesos_gpu.core.model import JobState, TaskState
from mesos_gpu.core.placement.offers import AgentSlot
from mesos_gpu.core.placement.outcomes import CyclePlan, Plan, WaitReason
from mesos_gpu.core.preemptoffers import FreedGpus, freed_offers, vacated_hosts, with_freed
from mesos_gpu.core.records import JobRecord, MemberRecord
from mesos_gpu.core.scheduling import GangRequest
from mesos_gpu.core.sharing import ShareHostViews
from mesos_gpu.core.tenancy import TenantsConfig, gpus_text
from mesos_gpu.core.tenancyadmit import Waiting, admit
from mesos_gpu.core.tenancyusage import member_gpus, waiting_of
from mesos_gpu.core.tenancyvictims import Claim, Running, choose_own_victims, choose_victims

if TYPE_CHECKING:
    from mesos_gpu.core.state import SchedulerState

__all__ = [
    "DEFAULT_GRACE_SECONDS", "Preemption", "ended_in_grace", "freed_offers", "kill_again", "stop_grace",
    "stopped_to_requeue", "with_freed",
]

DEFAULT_GRACE_SECONDS = 30.0
PREEMPTED_PREFIX = "preempted by job "
DRAINED_PREFIX = "killed by the GPU profile switch"   # `profilesapply.drain_note`
STOPPED_PREFIXES = (PREEMPTED_PREFIX, DRAINED_PREFIX)

JsonDict = dict[str, Any]
# A claim: the waiting job, and its placement request (None: its tenant's quota held it).
ClaimOf = tuple[JobRecord, GangRequest | None]


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
    # Claim job id -> the longest linger of the share hosts its victims vacated (added to the settle).
    settle_extra: dict[str, float] = field(default_factory=dict)
    # The attributes each agent's last offer carried (synthetic offers of freed capacity need them).
    attributes: dict[str, list[JsonDict]] = field(default_factory=dict)
    # A round on Tick once no round ran for this long while jobs have been ready that long (None: never).
    idle_seconds: float | None = 10.0
    last_round_at: float | None = None
    # The most plans one claim's victims are pruned with (`_prune`).
    max_prunes: int = 4
    # Every agent with its attributes (`mesos_gpu.driver.catalog`), for agents no offer was seen from.
    catalog: Callable[[], Sequence[AgentSlot] | None] | None = None
    _restored: bool = field(default=False, repr=False)

    def round(self, state: SchedulerState, requests: Sequence[GangRequest], plan: CyclePlan | None,
              offers: Sequence[Mapping[str, Any]], now: float, *, held: Sequence[JobRecord] = ()) -> None:
        """One preemption round after an offer cycle (see the module docstring); commands go to `state`.
        `plan`: the cycle's (None: nothing was offered to placement); `held`: jobs admission looked at
        (those not in `requests` are the ones their quota held)."""
        self.last_round_at = now
        outcomes = plan.outcomes if plan is not None else {}
        requested = {request.job_id for request in requests} if held else set()
        # both in queue order: the first `max_claims` of each (a cycle may hold 10,000 waiting jobs)
        waiting = ((state.jobs[r.job_id], r) for r in requests
                   if isinstance(outcomes.get(r.job_id), WaitReason))
        claims: list[ClaimOf] = list(islice(waiting, self.max_claims))
        claims += islice(((job, None) for job in held if job.id not in requested), self.max_claims)
        taken = {launch.agent_id for launch in plan.accepts} if plan is not None else set()
        spare: list[Mapping[str, Any]] = [o for o in offers if str(o["agent_id"]["value"]) not in taken]
        placed = {job_id for job_id, outcome in outcomes.items() if isinstance(outcome, Plan)}
        self._run(state, claims, spare, placed, now)

    def note_offers(self, offers: Sequence[Mapping[str, Any]]) -> None:
        """Remember each offering agent's attributes (called on every offer cycle: the synthetic offers of
        a round on Tick need them, when no offer comes)."""
        for offer in offers:
            self.attributes[str(offer["agent_id"]["value"])] = list(offer.get("attributes", ()))

    def attributes_of(self) -> Mapping[str, list[JsonDict]]:
        """Each agent's attributes: from its last offer, else from the agent catalog (`catalog`: a new
        leader of a full cluster gets no offers)."""
        agents = self.catalog() if self.catalog is not None else None
        if not agents:
            return self.attributes
        known = {agent.agent_id: [{"name": name, "type": "TEXT", "text": {"value": value}}
                                  for name, value in agent.attributes.items()] for agent in agents}
        return {**known, **self.attributes}

    def on_tick(self, state: SchedulerState, now: float) -> None:
        """A round without offers, when none ran for `idle_seconds` (no offer cycle with waiting jobs came)
        and jobs have been ready at least that long: planned on what the victims free only."""
        idle = self.idle_seconds
        if idle is None or not state.connected:
            return
        if self.last_round_at is None:
            self.last_round_at = now    # a new term: count from its first tick
            return
        if now - self.last_round_at < idle:
            return
        self.last_round_at = now
        queue = list(map(state.jobs.__getitem__, state._ready_ids(now)))     # in queue order
        ready = [job for job in queue if now - job.ready_since >= idle]
        del ready[self.max_claims:]
        if not ready:
            return
        config = state.tenancy() if state.tenancy is not None else None
        held: set[str] = set()
        if config is not None:    # on the whole queue, as an offer cycle admits (a job behind another)
            held = set(admit(config, state.tenant_usage(), [waiting_of(job) for job in queue]).held)
        admitted = [job for job in ready if job.id not in held]
        claims: list[ClaimOf] = list(zip(admitted, state._gang_requests(admitted, now), strict=True))
        claims += [(job, None) for job in ready if job.id in held]
        self._run(state, claims, [], set(), now)

    def _run(self, state: SchedulerState, claims: list[ClaimOf], spare: list[Mapping[str, Any]],
             placed: set[str], now: float) -> None:
        if not claims:
            return
        self._restore(state, now)
        for claim_id in [c for c in self.spared if c not in state.jobs or state.jobs[c].state.is_terminal]:
            del self.spared[claim_id]   # the memory of claims that ended
            self.freed_at.pop(claim_id, None)
            self.settle_extra.pop(claim_id, None)
        running = [job for job in _running(state) if job.job_id not in placed]   # not what it just launched
        if not running:
            return
        queue = state._placeable
        claims = sorted(claims, key=lambda c: queue.get(c[0].id, (0, 0.0, c[0].id)))[:self.max_claims]
        config = (state.tenancy() if state.tenancy is not None else None) or TenantsConfig()
        chosen: set[str] = set()
        usage = state.tenant_usage()
        round_ = _Round(state, running, spare, config, usage, chosen, now)
        for job, request in claims:
            if self._dying(state, job.id, now):
                continue    # its victims are still being killed, or what they freed is not offered yet
            found = self._try(round_, job, request)
            if found is None:
                continue    # nobody may be stopped for it, or it would still not fit: never preempt
            victims, trial = found
            used = {launch.agent_id for launch in trial.accepts}   # the next claim may not count them again
            spare[:] = [o for o in spare if str(o["agent_id"]["value"]) not in used]
            chosen.update(victims)
            self.spared.setdefault(job.id, set()).update(victims)
            records = [state.jobs[v] for v in victims]
            self._close_hosts(state, job.id, records)
            for victim in records:
                self._preempt(state, victim, job, config=config, usage=usage, held=request is None, now=now)
            for victim in records:     # what the next claim sees: the victims' GPUs are freed
                gpus = sum(member_gpus(victim, m.key) for m in victim.active_members())
                usage[victim.spec.tenant] = usage.get(victim.spec.tenant, 0) - gpus
            usage[job.spec.tenant] = usage.get(job.spec.tenant, 0) + round(job.spec.total_gpus * 1000)

    def _try(self, round_: _Round, job: JobRecord,
             request: GangRequest | None) -> tuple[tuple[str, ...], CyclePlan] | None:
        """The victims to stop for `job` and the plan that shows its gang fits afterwards, or None: first
        among all running jobs, then (when that did not fit and share jobs were candidates) among whole-GPU
        jobs only. `request` None: the claim's quota held it."""
        state, running, config, usage, now = (round_.state, round_.running, round_.config, round_.usage,
                                              round_.now)
        spec = job.spec
        claim = Claim(job.id, spec.tenant, spec.priority, round(spec.total_gpus * 1000))
        spared = self.spared.get(job.id, set()) | round_.chosen
        held = request is None
        gang = state._gang_requests([job], now)[0] if request is None else request
        whole = [r for r in running if not _has_share(state.jobs[r.job_id])]
        for candidates in (running, whole) if len(whole) < len(running) else (running,):
            if held:
                admits = _admits(claim, config, usage)
                victims = choose_own_victims(claim, candidates, admits=admits, now=now, spared=spared)
                trial = None if victims is None else self._trial(round_, gang, victims)
                if victims is not None and trial is not None:
                    return victims, trial
                continue
            # the victims must free the claim's GPUs, less those idle in the spare offers (first: the
            # plan tells whether they are usable), counting what the chosen SET frees (`FreedGpus`)
            idle = _idle_gpus(round_.spare)
            for needed in dict.fromkeys((claim.gpus - idle, claim.gpus)):
                frees = FreedGpus(state.jobs, state.share_hosts).add
                victims = choose_victims(claim, candidates, config=config, usage=usage, now=now,
                                         spared=spared, frees=frees, needed=needed)
                trial = None if victims is None else self._trial(round_, gang, victims)
                if victims is not None and trial is not None:
                    return self._prune(round_, gang, max(1, needed), victims, trial)
        return None

    def _trial(self, round_: _Round, gang: GangRequest, victims: Sequence[str]) -> CyclePlan | None:
        """The plan of `gang` on the spare offers plus what `victims` free, the share hosts they vacate
        left out (once gone, a profile keeps GPUs for them again), or None when it does not fit."""
        state = round_.state
        records = [state.jobs[v] for v in victims]
        extra = freed_offers(records, self.attributes_of(), state.share_hosts)
        gone = {host.host_id for host in vacated_hosts(records, state.share_hosts)}
        views = state.share_host_views(round_.now)
        if gone:
            profile = views.profile if isinstance(views, ShareHostViews) else None
            views = ShareHostViews([view for view in views if view.host_id not in gone], profile)
        trial = state.planner([_fresh(gang)], with_freed(round_.spare, extra), views)
        return trial if isinstance(trial.outcomes.get(gang.job_id), Plan) else None

    def _prune(self, round_: _Round, gang: GangRequest, needed: int, victims: tuple[str, ...],
               trial: CyclePlan) -> tuple[tuple[str, ...], CyclePlan]:
        """`victims` less those the claim fits without: first, in one plan, every victim whose removal
        leaves what the set frees unchanged (e.g. a share whose host keeps another share frees no GPU;
        when the gang no longer fits, the full list stays); then the dearest first: a victim is left out
        only when the rest still frees `needed` thousandths and the gang is planned again on what the rest
        frees (at most `max_prunes` plans)."""
        state = round_.state
        useful = _useful(victims, lambda chosen: FreedGpus(state.jobs, state.share_hosts).total(chosen))
        if 0 < len(useful) < len(victims):     # one plan without every victim that frees nothing
            again = self._trial(round_, gang, useful)
            if again is not None:
                victims, trial = useful, again
        kept = list(victims)
        plans = 0
        for victim in reversed(victims):
            if plans >= self.max_prunes or len(kept) == 1:
                break
            rest = [v for v in kept if v != victim]
            counter = FreedGpus(state.jobs, state.share_hosts)
            if sum(map(counter.add, rest)) < needed:
                continue
            plans += 1
            again = self._trial(round_, gang, rest)
            if again is not None:
                kept, trial = rest, again
        return tuple(kept), trial

    def _restore(self, state: SchedulerState, now: float) -> None:
        """Once per term: who was preempted for whom, from the records (`JobRecord.preempted_for`), and
        the linger of the share hosts a victim still waiting to run again left closing, added to its
        claim's settle wait (`settle_extra`, as `_close_hosts` adds it)."""
        if self._restored:
            return
        self._restored = True
        for job in state.jobs.values():
            for claim_id in job.preempted_for:
                self.spared.setdefault(claim_id, set()).add(job.id)
            if job.preempted_for and job.state is JobState.RESTARTING:
                claim_id = job.preempted_for[-1]    # the claim that stopped it last
                extra = max((_linger_left(state, m, now) for m in job.members.values()), default=0.0)
                if extra > 0:
                    self.settle_extra[claim_id] = max(self.settle_extra.get(claim_id, 0.0), extra)

    def _dying(self, state: SchedulerState, claim_id: str, now: float) -> bool:
        """Whether a job preempted for `claim_id` still has tasks being killed, or all ended less than
        `settle_seconds` (plus the linger of the share hosts they vacated) ago and one is not placed again
        yet (its GPUs may not have been offered yet)."""
        jobs = state.jobs
        waiting = [jobs[v] for v in self.spared.get(claim_id, ())
                   if v in jobs and jobs[v].state is JobState.RESTARTING]
        if any(victim.active_members() for victim in waiting):
            self.freed_at.pop(claim_id, None)
            return True
        if not waiting:
            self.freed_at.pop(claim_id, None)
            return False
        settle = self.settle_seconds + self.settle_extra.get(claim_id, 0.0)
        return now - self.freed_at.setdefault(claim_id, now) < settle

    def _close_hosts(self, state: SchedulerState, claim_id: str, victims: Sequence[JobRecord]) -> None:
        """The share hosts the victims vacate take no new share (marked closing: placement still sees them,
        holding their GPU, until their executors exit at their linger, giving the GPU back to Mesos, and
        they are forgotten)."""
        for host in vacated_hosts(victims, state.share_hosts):
            host.closing = True
            self.settle_extra[claim_id] = max(self.settle_extra.get(claim_id, 0.0), host.linger_seconds)

    def _preempt(self, state: SchedulerState, victim: JobRecord, claim: JobRecord, *, config: TenantsConfig,
                 usage: Mapping[str, int], held: bool, now: float) -> None:
        """Requeue `victim` (not a failure) saying who preempted it and why; kill its members gracefully;
        its record remembers the claim (live claims only), so that it is never preempted for it again."""
        why = _why(victim, claim, config, usage, held)
        message = f"{PREEMPTED_PREFIX}{claim.id} ({why}); back in the queue once its tasks ended"
        jobs = state.jobs
        live = [c for c in victim.preempted_for
                if c != claim.id and c in jobs and not jobs[c].state.is_terminal]
        victim.preempted_for = (*live, claim.id)
        victim.next_attempt_at = now
        state._set_state(victim, JobState.RESTARTING, now, message)
        for member in victim.members.values():
            if member.is_active and member.task_id is not None:
                state._actions.append(GracefulKill(member.task_id, member.agent_id, self.grace_seconds))


@dataclass
class _Round:
    """What the claims of one round share: the running jobs, the spare offers left, the tenants' terms
    and usage (updated as victims are chosen), the victims chosen so far, and the time."""

    state: SchedulerState
    running: list[Running]
    spare: list[Mapping[str, Any]]
    config: TenantsConfig
    usage: dict[str, int]
    chosen: set[str]
    now: float


def _admits(claim: Claim, config: TenantsConfig, usage: Mapping[str, int]) -> Callable[[int], bool]:
    """For a claim its quota held: whether freeing `freed` thousandths of its own tenant's GPUs gets it
    admitted, its tenant then using no more than it does now or its quota (so that the claim takes no
    more borrowed GPUs than its tenant gives back)."""
    tenant = claim.tenant
    now_used = usage.get(tenant, 0)
    bound = max(now_used, config.of_tenant(tenant).quota)
    waiting = Waiting(claim.job_id, tenant, claim.gpus)

    def admits(freed: int) -> bool:
        after = {**usage, tenant: now_used - freed}
        return after[tenant] + claim.gpus <= bound and bool(admit(config, after, [waiting]).admitted)

    return admits


def _linger_left(state: SchedulerState, member: MemberRecord, now: float) -> float:
    """How much longer the share host of a stopped job's `member` may still hold its GPU after a failover:
    its linger, from the member's record (`share["executor"]`: the host is rebuilt from active members
    only, so a host whose share already ended is unknown to a new leader, yet its executor lingers),
    counted from when the host emptied when that is known; 0 for a host known not to close (another
    live share keeps it) or ended, and for a member that is no share."""
    share = member.share
    if share is None:
        return 0.0
    host = state.share_hosts.get(str(share.get("host")))
    if host is not None:
        if not host.closing or host.ended:
            return 0.0
        since = host.empty_since
        return host.linger_seconds if since is None else max(0.0, since + host.linger_seconds - now)
    executor = share.get("executor") or {}
    return float(executor.get("linger_seconds", state.settings.share_linger_seconds))


def _useful(victims: tuple[str, ...], total: Callable[[Sequence[str]], int]) -> tuple[str, ...]:
    """`victims` without each one whose removal leaves `total` (what a set frees) unchanged. Leaving
    them all out at once keeps the total: such a victim is a share on a host another share keeps, and
    fewer victims never vacate more hosts."""
    whole = total(victims)
    return tuple(v for v in victims if total([u for u in victims if u != v]) != whole)


def _idle_gpus(offers: Sequence[Mapping[str, Any]]) -> int:
    """Thousandths of GPUs in `offers` (a round's spare offers)."""
    return sum(round(float(resource.get("scalar", {}).get("value", 0)) * 1000)
               for offer in offers for resource in offer.get("resources", ())
               if resource.get("name") == "gpus")


def _has_share(job: JobRecord) -> bool:
    return any(member.share is not None for member in job.members.values())


def stop_grace(state: SchedulerState) -> float:
    """The grace of a preemption's or a drain's kill: the preemption's when it is on, else the default."""
    return state.preemption.grace_seconds if state.preemption is not None else DEFAULT_GRACE_SECONDS


def kill_again(state: SchedulerState, job: JobRecord) -> None:
    """Send again the kills of `job`'s active members after a (re)subscription (the driver dropped those
    sent while disconnected): a job stopped by a preemption or a drain keeps its grace (a plain KILL would
    fall back to the TaskInfo's `kill_policy` and, on Mesos' command executor, shorten a grace already
    running: a kill may only shorten it); any other job gets a plain KILL, as before."""
    if job.kill_requested or not stopped_to_requeue(job):
        state._kill_active(job)
        return
    grace = stop_grace(state)
    for member in job.members.values():
        if member.is_active and member.task_id is not None:
            state._actions.append(GracefulKill(member.task_id, member.agent_id, grace))


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


def _why(victim: JobRecord, claim: JobRecord, config: TenantsConfig, usage: Mapping[str, int],
         held: bool = False) -> str:
    tenant, own = victim.spec.tenant, claim.spec.tenant
    if held:    # its own tenant's quota held the claim: a lower-priority job of the same tenant makes room
        return (f"{own} is at its quota or limit; priority {claim.spec.priority} > {victim.spec.priority} "
                f"within {own}")
    if tenant != own and usage.get(tenant, 0) > config.of_tenant(tenant).quota:
        quota = gpus_text(config.of_tenant(own).quota)
        return (f"{tenant} borrows GPUs beyond its quota; {own} reclaims its guaranteed {quota} GPUs"
                if usage.get(own, 0) + round(claim.spec.total_gpus * 1000) <= config.of_tenant(own).quota
                else f"{tenant} borrows GPUs beyond its quota; priority {claim.spec.priority} > "
                     f"{victim.spec.priority}")
    return f"priority {claim.spec.priority} > {victim.spec.priority}"


def _running(state: SchedulerState) -> list[Running]:
    """The jobs preemption may stop: running or staging, not being killed already (GPU shares too: each
    counts the thousandths its shares hold)."""
    seen: dict[str, Running] = {}
    skip: set[str] = set()
    for job_id, _key in state.task_index.values():
        if job_id in seen or job_id in skip:
            continue
        job = state.jobs[job_id]
        if job.state not in (JobState.RUNNING, JobState.STAGING) or job.kill_requested:
            skip.add(job_id)
            continue
        gpus = sum(member_gpus(job, m.key) for m in job.active_members())
        started = job.started_at if job.started_at is not None else job.submitted_at
        seen[job_id] = Running(job_id, job.spec.tenant, job.spec.priority, gpus, started)
    return list(seen.values())
