"""Whole-GPU tasks stopped at a GPU profile's drain deadline, when the switch keeps MORE GPUs for shares.

A switch into a profile whose agent group keeps more GPUs for share hosts (`share_gpus`, e.g. night ->
day) lets running whole-GPU tasks on the GPUs now kept run on: placement keeps only free GPUs
(`core.placement.sharekeep`). Once the profile's `drain_seconds` have passed since the switch (none set:
they are never stopped), `reclaim_kept` (called on each tick) stops our whole-GPU jobs there, as
`core.profiledrain` does for share tasks: back in the queue at once (RESTARTING, not a failure), a
message naming the profile and the deadline, and a graceful KILL of every active member.

Per agent of a keeping group, the shortfall is the GPUs the switch keeps beyond the profile before
it, at most `share_gpus` less the share hosts there (closing and lingering ones too: they hold a GPU)
less the whole GPUs free in the agent's last offers (`core.profiletrack.ReclaimTrack.note_offers`, at
the start of each offer cycle) less the GPUs of jobs already stopped for this switch whose GPU no offer
has shown free since. An agent not offered since the switch (and since this leader connected) counts as
having no free GPU. The jobs to stop (`choose`) are the lowest priority, then fewest GPU-hours lost
first (a gang counts all its GPUs: stopping one member stops the gang), only jobs holding a GPU of an
agent still short, and of those only the ones the cover needs (each chosen job is needed for it). A
stopped job's record keeps the switch (`JobRecord.drained_for`): it is never stopped twice for one
switch, also after a failover (rebuilt only from jobs still RESTARTING for it). A leader waits
`OFFER_SETTLE_SECONDS` after (re)connecting for the agents' offers before it stops anything. While
nothing waits, offers are suppressed or filtered for long: the first time a short agent has had no offer
since the switch (and since this leader last connected), a REVIVE asks for them, nothing is stopped for
`OFFER_SETTLE_SECONDS`, and offers are suppressed again once that has passed, whatever the tick does
(an agent with every GPU busy may not be offered at all: only then does "no offer" stand for "no free
GPU").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mesos_gpu.core.commands import GracefulKill, Revive, Suppress
from mesos_gpu.core.jobenums import JobState
from mesos_gpu.core.preempt import stop_grace
from mesos_gpu.core.profiles import AgentGroup, Profile
from mesos_gpu.core.profiletrack import ReclaimTrack
from mesos_gpu.core.tenancyusage import member_gpus

if TYPE_CHECKING:
    from mesos_gpu.core.records import JobRecord
    from mesos_gpu.core.state import SchedulerState

__all__ = ["OFFER_SETTLE_SECONDS", "Holder", "choose", "reclaim_kept", "reclaim_note"]

#: After (re)connecting, how long a leader waits for the agents' offers before it stops anything.
OFFER_SETTLE_SECONDS = 5.0
WHOLE = 1000
_RUNNING = frozenset((JobState.RUNNING, JobState.STAGING))


@dataclass(frozen=True)
class Holder:
    """A running whole-GPU job as `choose` sees it: whole GPUs per agent, GPU-hours lost if stopped."""

    job_id: str
    gpus: Mapping[str, int]
    lost: float
    priority: int = 0


def choose(shortfall: Mapping[str, int], holders: Sequence[Holder]) -> list[str]:
    """The jobs to stop (lowest priority first, then fewest GPU-hours lost, as preemption orders victims)
    so that their GPUs cover each agent's shortfall as far as the holders can; a job holding no GPU of a
    short agent is never chosen, and each chosen job is needed (without it some agent would be covered
    less). O(n log n) in the holders plus their agents: per-agent running totals, no re-summing."""
    need = {agent: short for agent, short in shortfall.items() if short > 0}
    left = dict(need)
    open_agents = len(left)
    chosen: list[Holder] = []
    for holder in sorted(holders, key=lambda h: (h.priority, h.lost, sum(h.gpus.values()), h.job_id)):
        if not open_agents:
            break
        if any(left.get(agent, 0) > 0 and gpus > 0 for agent, gpus in holder.gpus.items()):
            chosen.append(holder)
            for agent, gpus in holder.gpus.items():
                if agent in left:
                    was = left[agent]
                    left[agent] -= gpus
                    if was > 0 >= left[agent]:
                        open_agents -= 1
    total = {agent: short - left[agent] for agent, short in need.items()}   # GPUs the chosen hold there
    kept: list[Holder] = []
    for holder in sorted(chosen, key=lambda h: (-h.priority, -h.lost, h.job_id)):    # costliest go first
        # Dropping it keeps every agent's cover iff each short agent it holds GPUs on stays covered.
        if all(total[agent] - gpus >= need[agent] for agent, gpus in holder.gpus.items()
               if agent in need and gpus > 0):
            for agent, gpus in holder.gpus.items():
                if agent in need:
                    total[agent] -= gpus
        else:
            kept.append(holder)
    order = {id(holder): n for n, holder in enumerate(chosen)}
    return [holder.job_id for holder in sorted(kept, key=lambda h: order[id(h)])]


def reclaim_note(profile: str, deadline: float) -> str:
    """The message of a whole-GPU job stopped at the deadline (starts as `profilesapply.drain_note`)."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    return (f"killed by the GPU profile switch to {profile!r}: its GPUs are kept for share hosts and the "
            f"drain deadline ({when}) passed; back in the queue once its tasks ended")


def _kept(group: AgentGroup | None) -> int:
    return group.share_gpus or 0 if group is not None else 0


def reclaim_kept(state: SchedulerState, now: float) -> list[str]:
    """Stop the whole-GPU jobs the switch's kept GPUs need at `now` (see the module docstring); their ids."""
    hosts = state.share_hosts
    track = hosts.reclaim
    if not state.connected:     # earlier offers are stale once reconnected: ask afresh (a new REVIVE)
        track.connected_since = None
        track.revived_for, track.suppress_after = None, False
        return []
    if track.connected_since is None:
        track.connected_since = now
    _resuppress(state, track, now)      # before any early return: never left revived while "suppressed"
    config = hosts.config()
    at = config.at(now) if config is not None else None
    if config is None or at is None or at.profile is None or at.since is None or at.drain_deadline is None \
            or now < at.drain_deadline or now < track.connected_since + OFFER_SETTLE_SECONDS:
        return []
    if not any(group.share_gpus for group in at.profile.groups):
        return []       # keeps no GPU anywhere (night): nothing to reclaim, at no cost per tick
    _follow(state, track, at.since, now)
    shortfall, unseen = _shortfall(state, track, at.profile, track.previous(config, at.since), at.since)
    if _awaiting_offers(state, track, at.since, bool(shortfall and unseen), now) or not shortfall:
        return []
    chosen = choose(shortfall, _holders(state, shortfall, at.since, now))
    note = reclaim_note(at.profile.name, at.drain_deadline)
    grace = stop_grace(state)
    for job_id in chosen:
        _stop(state, state.jobs[job_id], at.since, note, grace=grace, now=now)
    return chosen


def _awaiting_offers(state: SchedulerState, track: ReclaimTrack, since: float, unseen: bool,
                     now: float) -> bool:
    """Whether to wait for offers first: the first time a short agent has none since the switch, a REVIVE
    (when offers are suppressed or filtered: nothing waits) asks for them, and nothing is stopped for
    `OFFER_SETTLE_SECONDS`; then offers are suppressed again if they were."""
    if unseen and track.revived_for != since:
        track.revived_for, track.revived_at = since, now
        track.suppress_after = state.suppressed
        if state.suppressed or state.idle_filters:
            state._actions.append(Revive())    # `suppressed` is left as it was: no SUPPRESS follows at once
            state.idle_filters = False
    return track.revived_for == since and now < track.revived_at + OFFER_SETTLE_SECONDS


def _resuppress(state: SchedulerState, track: ReclaimTrack, now: float) -> None:
    """Once `OFFER_SETTLE_SECONDS` after our REVIVE have passed (whatever the tick does next), SUPPRESS
    again if the state machine still believes offers suppressed: Mesos and the state never disagree for
    longer than that."""
    if track.suppress_after and now >= track.revived_at + OFFER_SETTLE_SECONDS:
        track.suppress_after = False
        if state.suppressed:     # still nothing waits: as the state machine believes, suppressed again
            state._actions.append(Suppress())


def _follow(state: SchedulerState, track: ReclaimTrack, since: float, now: float) -> None:
    """Keep `track.stopped` for the switch at `since` (rebuilt from the records for a new switch or a new
    leader) and note when each of its tasks was first seen ended."""
    if track.switch != since:
        track.switch = since
        track.stopped = {}
        for job in state.jobs.values():
            if job.drained_for == since and job.state is JobState.RESTARTING:   # not a relaunched one
                for member in job.active_members():
                    if member.share is None and member.task_id is not None and member.agent_id:
                        gpus = member_gpus(job, member.key) // WHOLE
                        track.stopped[member.task_id] = (member.agent_id, gpus, None)
    track.ended(state.task_index, now)


def _shortfall(state: SchedulerState, track: ReclaimTrack, profile: Profile, previous: Profile | None,
               since: float) -> tuple[dict[str, int], bool]:
    """Per agent with whole-GPU tasks of ours, the kept GPUs still missing there (only positive ones), and
    whether one of those agents has had no offer since the switch."""
    hosts = state.share_hosts
    ours = whole_gpus_by_agent(state)
    agents = {state.jobs[job_id].members[key].agent_id for job_id, key in state.task_index.values()}
    settled = max(since, track.connected_since or since)
    out: dict[str, int] = {}
    unseen = False
    counts: Counter[str | None] | None = None
    stopped: dict[str, list[tuple[int, float | None]]] = {}     # agent -> its stopped tasks, once per tick
    for where, gpus, ended in track.stopped.values():
        stopped.setdefault(where, []).append((gpus, ended))
    for agent in agents:
        attributes = hosts.attributes.get(agent) if agent else None
        if agent is None or attributes is None:
            continue
        keep = _kept(profile.group_of(attributes))
        more = keep - (_kept(previous.group_of(attributes)) if previous is not None else 0)
        if more <= 0:
            continue
        seen = track.offered.get(agent)
        fresh = seen if seen is not None and seen.at >= settled else None
        # What the offer showed free, plus the GPUs our tasks there held then and hold no more (ended
        # since: Mesos has them back although offers may be suppressed), less those we took since.
        free = max(fresh.free + fresh.ours - ours.get(agent, 0), 0) if fresh is not None else 0
        if fresh is None and counts is None:    # one pass over the share hosts per tick, not per agent
            counts = Counter(host.agent_id for host in hosts.values() if not host.ended)
        on = fresh.hosts if fresh is not None else (counts[agent] if counts is not None else 0)
        covering = sum(gpus for gpus, ended in stopped.get(agent, ())   # an ended one is in `free` once
                       if ended is None or fresh is None)
        short = min(more, keep - on - free - covering)
        if short > 0:
            out[agent] = short
            unseen = unseen or fresh is None
    return out, unseen


def whole_gpus_by_agent(state: SchedulerState) -> dict[str, int]:
    """Whole GPUs our active whole-GPU tasks hold, per agent: O(active tasks)."""
    out: dict[str, int] = {}
    for job_id, key in state.task_index.values():
        job = state.jobs[job_id]
        member = job.members[key]
        if member.share is None and member.agent_id and member.is_active:
            gpus = member_gpus(job, key) // WHOLE
            if gpus:
                out[member.agent_id] = out.get(member.agent_id, 0) + gpus
    return out


def _holders(state: SchedulerState, shortfall: Mapping[str, int], since: float, now: float) -> list[Holder]:
    """Our running whole-GPU jobs holding a GPU of a short agent, not stopped for this switch already."""
    out: dict[str, Holder] = {}
    for job_id, _key in state.task_index.values():
        if job_id in out:
            continue
        job = state.jobs[job_id]
        if job.state not in _RUNNING or job.kill_requested \
                or job.drained_for == since:
            continue
        holder = _holder(job, now)
        if holder is not None and any(agent in shortfall for agent in holder.gpus):
            out[job_id] = holder
    return list(out.values())


def _holder(job: JobRecord, now: float) -> Holder | None:
    gpus: dict[str, int] = {}
    total = 0
    for member in job.active_members():
        held = member_gpus(job, member.key)
        total += held
        if member.share is None and held >= WHOLE and member.agent_id:
            gpus[member.agent_id] = gpus.get(member.agent_id, 0) + held // WHOLE
    if not gpus:
        return None     # a GPU-share job (or one without GPUs): not this module's
    started = job.started_at if job.started_at is not None else job.submitted_at
    return Holder(job.id, gpus, total / WHOLE * max(0.0, now - started) / 3600, job.spec.priority)


def _stop(state: SchedulerState, job: JobRecord, since: float, note: str, *, grace: float,
          now: float) -> None:
    """Requeue `job` (not a failure) with `note`, kill its members gracefully, remember the switch."""
    job.drained_for = since
    job.next_attempt_at = now
    state._set_state(job, JobState.RESTARTING, now, note)
    track = state.share_hosts.reclaim
    for member in job.members.values():
        if member.is_active and member.task_id is not None:
            state._actions.append(GracefulKill(member.task_id, member.agent_id, grace))
            if member.share is None and member.agent_id:
                track.stopped[member.task_id] = (member.agent_id, member_gpus(job, member.key) // WHOLE, None)
