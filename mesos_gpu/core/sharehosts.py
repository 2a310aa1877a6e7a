"""Share hosts as the state machine knows them (pure): `ShareHostRecord`s in a `ShareHosts` dict.

A share host (`mesos_gpu.core.sharing`) is an executor of ours holding one whole GPU; share tasks are
launched to it. The scheduler keeps, per host, where it is, its level, its device's memory, the exact
ExecutorInfo it was opened with (every later task to it repeats it), and the grant of each task on it:
the ledger placement reads through `ShareHosts.views` (`ShareHostView`s).

Lifecycle: placement grants a share on a new host (provisional id "new:<agent>:<n>"); `ShareCycle.place`
opens it as "sharehost.<task id of the first task granted on it>". Each ended task is released; an
empty host lingers: it takes new shares until `linger - LINGER_MARGIN_SECONDS` after it emptied
(`accepting`; one known across a (re)subscription, `unsure`, takes nothing once empty: when it emptied
is not known), and is forgotten `FORGET_AFTER_SECONDS` after its executor exits by itself (`sweep`), or
at once when Mesos says its executor ended (`executor_ended`) or when no task on it ever started (its
executor may never have run). The ledger is not persisted: each share member's record carries its grant
and what its host's ExecutorInfo is built from, and `restore` rebuilds the hosts from the active members
of recovered jobs.

Profiles (`mesos_gpu.core.profiles`): given `profiles` (what returns the profiles section in force),
`views(now)` hands placement the profile in force with the views (`ShareHostViews`), so hosts that leave
the share set take no new share; `overdue(now)` names the share tasks still on such hosts once the
profile's drain deadline has passed (the state machine kills them with the note). Which group an agent
belongs to is read from the attributes of its last offers (`note_offers`; `ShareCycle` notes them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesos_gpu.core.devicelabels import status_labels
from mesos_gpu.core.model import Isolation, JobSpec, TaskSpec, TaskState
from mesos_gpu.core.placement.offers import attributes_from_mesos
from mesos_gpu.core.placement.outcomes import CyclePlan, Plan, TaskPlacement
from mesos_gpu.core.placement.shares import NEW_HOST_PREFIX  # placement's provisional ids
from mesos_gpu.core.profiles import AgentGroup, ProfilesConfig
from mesos_gpu.core.profilesapply import draining, overdue, profile_view
from mesos_gpu.core.profiletrack import ReclaimTrack
from mesos_gpu.core.resources import Resources
from mesos_gpu.core.sharing import (
    ATTR_GPU_MIG,
    LABEL_DEVICE,
    LABEL_ENFORCEMENT,
    LINGER_MARGIN_SECONDS,
    SHARE_HOST_RESOURCES,
    ShareGrant,
    ShareHostView,
    ShareHostViews,
    milli,
    parse_mig_layout,
)
from mesos_gpu.core.taskinfo import (
    LaunchSettings,
    Placed,
    build_share_task_info,
    share_executor_info,
    share_host_params,
)

if TYPE_CHECKING:
    from mesos_gpu.core.records import MemberRecord
    from mesos_gpu.core.scheduling import GangRequest

__all__ = [
    "FORGET_AFTER_SECONDS", "NEW_HOST_PREFIX", "SHARE_HOST_PREFIX", "ShareCycle", "ShareHostRecord",
    "ShareHosts", "check_share_plan", "gone_hosts", "grant_from_dict",
]

SHARE_HOST_PREFIX = "sharehost."  # + the full task id of the first task granted on the host
FORGET_AFTER_SECONDS = 10.0  # an empty host is forgotten this long after its executor exits by itself
REASON_RECONCILIATION = "REASON_RECONCILIATION"
REASON_TASK_INVALID = "REASON_TASK_INVALID"


def grant_from_dict(data: Mapping[str, Any]) -> ShareGrant:
    """The `ShareGrant` a member's `share` record holds (`ShareGrant.to_dict()`, extra keys ignored)."""
    mig_index = data.get("mig_index")
    return ShareGrant(
        host_id=str(data["host"]),
        new_host=False,
        isolation=Isolation(data["isolation"]),
        gpus=milli(float(data["gpus"])),
        memory=int(data.get("gpu_memory", 0)),
        device_memory=int(data.get("device_memory", 0)),
        mig_index=None if mig_index is None else int(mig_index),
        mig_profile=data.get("mig_profile"),
    )


def host_opened_by(task_id: str) -> str:
    """The id of the share host a task opens (named after that first task granted on it)."""
    return SHARE_HOST_PREFIX + task_id


def fresh(status: Mapping[str, Any], since: float | None) -> bool:
    """Whether `status` is an update a task's executor made at or after `since`: one with a uuid, from the
    executor, not a reconciliation answer (the master's last word, which may be old), and stamped then
    (an agent retries an update with the time it was first made). The scheduler's clock is compared
    with the agent's: a skew delays the proof (agent behind) or lets an update made that much before
    the subscription count (agent ahead). Updates of the second the subscription fell in count too."""
    if since is None or "uuid" not in status or status.get("source") != "SOURCE_EXECUTOR" \
            or status.get("reason") == REASON_RECONCILIATION:
        return False
    stamp = status.get("timestamp")     # (pymesos's executor driver stamps whole seconds: floor)
    return isinstance(stamp, int | float) and stamp >= math.floor(since)


def gone_hosts(member: MemberRecord, members: Iterable[MemberRecord]) -> list[tuple[str, str]]:
    """When share member `member` was refused by the master (TASK_ERROR, REASON_TASK_INVALID, never
    started) and its attempt put shares on hosts it did not open, those hosts as (agent id, host id):
    the master counted such a host's executor as a new one, so it had ended although the scheduler took
    it for running (e.g. its end was told while no leader listened), and the refused member is either on
    it or was left without the GPU it took (the master launched the host anew there). The job is placed
    again. Empty otherwise: a launch on hosts its attempt opened that fails so fails."""
    if (member.share is None or member.state is not TaskState.ERROR or member.reason != REASON_TASK_INVALID
            or member.ever_started):
        return []
    attempt = [other for other in members if other.attempt == member.attempt and other.share is not None]
    opened = {host_opened_by(str(other.task_id)) for other in attempt}
    return sorted({(other.agent_id or "", str(other.share["host"])) for other in attempt
                   if other.share is not None and str(other.share["host"]) not in opened})


@dataclass
class ShareHostRecord:
    """One share host: where, its level, its device's memory (MB, 0: unknown), what its ExecutorInfo is
    built from (`params`, see `taskinfo.share_host_params`) and the ExecutorInfo itself, the grant of each
    task on it (by task id), since when it is empty (None: it is not), and whether any task on it has
    started (its executor runs) or Mesos said its executor ended."""

    host_id: str
    agent_id: str
    hostname: str
    isolation: Isolation
    device_memory: int
    params: dict[str, Any]
    executor_info: dict[str, Any]
    opened_at: float
    tasks: dict[str, ShareGrant] = field(default_factory=dict)
    empty_since: float | None = None
    started: bool = False
    ended: bool = False
    # A preemption stopped every task on it (`mesos_gpu.core.preempt`): it takes no new share, but its
    # executor still holds the GPU until it exits at its linger, so placement still sees it (a profile's
    # kept GPUs count it) until it is forgotten (`sweep`, `executor_ended`). Rebuilt after a failover
    # from the stopped jobs' records (`restore`).
    closing: bool = False
    # Rebuilt from the records of a recovered leader (`restore`).
    restored: bool = False
    # Known across a (re)subscription (rebuilt by a new leader, or known when the driver subscribed
    # again): its executor may have ended meanwhile (the master tells that only to a subscribed
    # framework, once), and the ends of its tasks may be told late (agents retry the updates held while
    # no leader listened; the master's reconciliation answers give the last state it heard, which may
    # be old). It takes no new share until it is shown to run: by an offer of its agent naming it among
    # the framework's executors there (`note_running`), or by an update its executor made after the
    # subscription (`fresh`); once empty before that, it is closing (when it emptied is not known).
    unsure: bool = False

    @property
    def linger_seconds(self) -> float:
        return float(self.params["linger_seconds"])

    @property
    def mig_layout(self) -> str:
        return str(self.params.get("mig_layout", ""))

    @property
    def used(self) -> int:
        """Thousandths of the GPU granted to its tasks."""
        return sum(grant.gpus for grant in self.tasks.values())

    @property
    def used_memory(self) -> int:
        """MB of the device granted to its tasks."""
        return sum(grant.memory for grant in self.tasks.values())

    def accepting(self, now: float) -> bool:
        """Whether it takes new shares: its executor has not ended, and it is busy or has been empty for
        less than its linger less the margin (it exits by itself at the linger)."""
        if self.ended or self.closing or self.unsure:
            return False
        since = self.empty_since
        return since is None or now - since < self.linger_seconds - LINGER_MARGIN_SECONDS

    def mig_free(self) -> tuple[int, ...]:
        """The MIG instances of its GPU (indexes into the agent's layout) no task holds."""
        if self.isolation is not Isolation.MIG:
            return ()
        try:
            layout = parse_mig_layout(self.mig_layout)
        except ValueError:
            return ()
        taken = {grant.mig_index for grant in self.tasks.values()}
        return tuple(index for index in range(len(layout)) if index not in taken)

    def view(self, now: float) -> ShareHostView:
        return ShareHostView(self.host_id, self.agent_id, self.isolation, self.device_memory, self.used,
                             self.used_memory, self.accepting(now), self.mig_free(), self.closing)

    def member_share(self, grant: ShareGrant) -> dict[str, Any]:
        """A member's `share` record for `grant` on this host (the device, and what is enforced, are
        known once it runs)."""
        return {**grant.to_dict(), "device": None, "enforcement": None, "executor": self.params}


class ShareHosts(dict[str, ShareHostRecord]):
    """The share hosts the scheduler knows, by host id (= executor id). `profiles`: what returns the
    profiles section in force (None, or returning None: no profile)."""

    def __init__(self, profiles: Callable[[], ProfilesConfig | None] | None = None) -> None:
        super().__init__()
        self.profiles = profiles
        self.attributes: dict[str, Mapping[str, str]] = {}   # agent id -> attributes of its last offer
        self.subscribed_at: float | None = None     # when the driver last subscribed (`resubscribed`)
        self.reclaim = ReclaimTrack()   # for the whole-GPU tasks a switch's kept GPUs need (profilereclaim)

    def config(self) -> ProfilesConfig | None:
        return self.profiles() if self.profiles is not None else None

    def views(self, now: float) -> ShareHostViews:
        """What placement is told of each host (those whose executor has not ended; closing ones too, not
        accepting: they still hold their GPU), with the profile in force at `now`."""
        config = self.config()
        profile = config.at(now).profile if config is not None else None
        return ShareHostViews(tuple(host.view(now) for host in self.values() if not host.ended), profile)

    def note_offers(self, offers: Sequence[Mapping[str, Any]], now: float | None = None,
                    active: Container[str] = (), ours: Callable[[], Mapping[str, int]] | None = None) -> None:
        """Remember each offering agent's attributes (text and scalar values as text); given `now` (an
        offer cycle's start) and the active task ids, while the profile in force keeps GPUs for shares,
        also its whole GPUs free and share hosts (`ReclaimTrack.note_offers`)."""
        if now is not None and self.reclaim.connected_since is None:
            self.reclaim.connected_since = now      # offers come only while connected
        config = self.config() if now is not None else None
        profile = config.at(now).profile if config is not None and now is not None else None
        if now is not None and profile is not None and any(group.share_gpus for group in profile.groups):
            on: dict[str, int] = {}
            for host in self.values():
                if not host.ended:
                    on[host.agent_id] = on.get(host.agent_id, 0) + 1
            self.reclaim.note_offers(offers, on, now, active, ours() if ours is not None else None)
        for offer in offers:
            agent_id = offer.get("agent_id", {}).get("value")
            if agent_id is not None:
                self.attributes[str(agent_id)] = attributes_from_mesos(offer.get("attributes", ()))

    def _group_of(self, config: ProfilesConfig, now: float) -> Callable[[str], AgentGroup | None]:
        profile = config.at(now).profile

        def group_of(agent_id: str) -> AgentGroup | None:
            attributes = self.attributes.get(agent_id)
            return None if profile is None or attributes is None else profile.group_of(attributes)
        return group_of

    def overdue(self, now: float) -> list[tuple[str, str, str]]:
        """(task id, agent id, note) of each share task to kill now: on a host leaving the share set
        after the drain deadline of the profile in force (none without profiles or before it)."""
        config = self.config()
        if config is None:
            return []
        at = config.at(now)
        views = [host.view(now) for host in self.values() if not (host.ended or host.closing)]
        drain = draining(views, self._group_of(config, now))
        tasks = {task_id: host.host_id for host in self.values() for task_id in host.tasks}
        agents = {task_id: self[host_id].agent_id for task_id, host_id in tasks.items()}
        return [(task_id, agents[task_id], note)
                for task_id, note in overdue(tasks, drain, at.profile, at.drain_deadline, now)]

    def profile_view(self, now: float) -> dict[str, Any] | None:
        """The current and next profile, and the hosts draining (`profilesapply.profile_view`)."""
        config = self.config()
        if config is None:
            return None
        views = [host.view(now) for host in self.values() if not (host.ended or host.closing)]
        return profile_view(config, now, views, self._group_of(config, now))

    def add(self, host: ShareHostRecord, task_id: str, grant: ShareGrant) -> None:
        host.tasks[task_id] = grant
        host.empty_since = None
        self[host.host_id] = host

    def release(self, task_id: str, host_id: str, now: float) -> None:
        """Task `task_id` ended: its grant returns to the host, which lingers once empty (or is forgotten
        at once when its executor ended or never ran a task); a closing one lingers too, taking nothing."""
        host = self.get(host_id)
        if host is None or host.tasks.pop(task_id, None) is None or host.tasks:
            return
        if host.ended or not host.started:
            del self[host_id]
        else:
            host.empty_since = now
            host.closing = host.closing or host.unsure   # (it may have exited already: see `unsure`)

    def on_status(self, member: MemberRecord, status: Mapping[str, Any], now: float) -> None:
        """A status update of share member `member` (its state already applied): the host has started,
        the device it runs on and what is enforced for it (TASK_RUNNING labels `mesos-gpu/device`,
        `mesos-gpu/enforcement`), or its grant is released."""
        share, state = member.share, member.state
        if share is None or state is None or member.task_id is None:
            return
        host_id = str(share["host"])
        host = self.get(host_id)
        if host is not None and host.unsure and fresh(status, self.subscribed_at):
            host.unsure = False     # its executor made this update after the subscription: it runs
        if state.is_terminal:
            self.release(member.task_id, host_id, now)
            return
        if host is not None:
            host.started = host.started or state in (TaskState.STARTING, TaskState.RUNNING)
        if state is not TaskState.RUNNING:
            return
        said = status_labels(status)
        reported = {key: value for key, label in _REPORTED
                    if (value := said.get(label)) is not None and value != share.get(key)}
        if reported:
            member.share = {**share, **reported}   # a new dict: a persisted one is never changed

    def note_running(self, offers: Sequence[Mapping[str, Any]]) -> None:
        """An offer names the executors of this framework running on its agent (`executor_ids`: the
        master's view now; offers come only on the current subscription): an `unsure` host named so runs."""
        unsure = {host.host_id: host for host in self.values() if host.unsure}
        if not unsure:
            return
        for offer in offers:
            agent_id = offer.get("agent_id", {}).get("value")
            for ref in offer.get("executor_ids", ()):
                host = unsure.get(str(ref.get("value")))
                if host is not None and host.agent_id == agent_id:
                    host.unsure = False

    def resubscribed(self, now: float) -> None:
        """The driver subscribed (again) at `now`: every host known now is `unsure`."""
        self.subscribed_at = now
        for host in self.values():
            host.unsure = True

    def executor_ended(self, agent_id: str, executor_id: str) -> None:
        """Mesos says the executor ended: the host takes no more shares, and is forgotten now if empty
        (else once Mesos has reported its tasks lost)."""
        host = self.get(executor_id)
        if host is None or host.agent_id != agent_id:
            return
        host.ended = True
        if not host.tasks:
            del self[executor_id]

    def sweep(self, now: float) -> None:
        """Forget the hosts empty for longer than their linger plus `FORGET_AFTER_SECONDS`."""
        gone = [host.host_id for host in self.values() if host.empty_since is not None
                and now - host.empty_since >= host.linger_seconds + FORGET_AFTER_SECONDS]
        for host_id in gone:
            del self[host_id]

    def restore(self, member: MemberRecord, settings: LaunchSettings, now: float, *,
                closing: bool = False) -> None:
        """Put active share member `member` (of a recovered job) on its host, rebuilding the host, with
        the very ExecutorInfo it was opened with, when it is not known yet. `closing`: a preemption (or a
        drain) stopped the member's job: a host rebuilt with such members only is closing again."""
        share = member.share
        if share is None or not member.is_active or member.task_id is None:
            return
        grant = grant_from_dict(share)
        host = self.get(grant.host_id)
        if host is None:
            params = dict(share.get("executor") or share_host_params((), settings))
            executor = share_executor_info(grant.host_id, grant.isolation, grant.device_memory, params)
            host = ShareHostRecord(grant.host_id, member.agent_id or "", member.hostname or "",
                                   grant.isolation, grant.device_memory, params, executor, opened_at=now,
                                   restored=True, closing=closing, unsure=True)
        elif host.restored:
            host.closing = host.closing and closing
        host.started = host.started or member.ever_started
        self.add(host, member.task_id, grant)


# The share host's words in TASK_RUNNING labels, kept in the member's share record: (record key, label).
_REPORTED = (("device", LABEL_DEVICE), ("enforcement", LABEL_ENFORCEMENT))


@dataclass
class ShareCycle:
    """The share side of one offer cycle: the real ids given to the hosts placement opened in it."""

    hosts: ShareHosts
    offers: Sequence[Mapping[str, Any]]
    settings: LaunchSettings
    now: float
    renames: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hosts.note_offers(self.offers)

    def launch(self, spec: JobSpec, task: TaskSpec, member: MemberRecord, where: TaskPlacement,
               placed: Placed) -> dict[str, Any]:
        """The TaskInfo of share member `member` (just launched) placed at `where`, with its grant
        recorded on its host and in the member's record."""
        assert member.task_id is not None
        host, grant = self.place(member.task_id, where)
        member.share = host.member_share(grant)
        return build_share_task_info(spec, task, member.attempt, placed, self.settings, grant=grant,
                                     executor=host.executor_info)

    def place(self, task_id: str, where: TaskPlacement) -> tuple[ShareHostRecord, ShareGrant]:
        """Give share task `task_id` its grant (`where.share`) on its host, opening the host when
        placement opened it in this cycle; the host and the grant with the host's real id."""
        grant = where.share
        if grant is None:
            raise AssertionError(f"share task {task_id} was placed without a grant")
        host_id = grant.host_id
        if grant.new_host:
            host_id = self.renames.get(grant.host_id, "")
            if not host_id:
                host_id = self.renames[grant.host_id] = host_opened_by(task_id)
                self._open(host_id, where, grant)
        host = self.hosts[host_id]
        real = dataclasses.replace(grant, host_id=host_id, new_host=False)   # a known host from now on
        self.hosts.add(host, task_id, real)
        return host, real

    def _open(self, host_id: str, where: TaskPlacement, grant: ShareGrant) -> None:
        gpu = Resources.of(gpus=1, cpus=SHARE_HOST_RESOURCES["cpus"], mem=SHARE_HOST_RESOURCES["mem"])
        layout = self._mig_layout(where.agent_id)
        params = share_host_params(where.labels.to_mesos(gpu), self.settings, layout)
        executor = share_executor_info(host_id, grant.isolation, grant.device_memory, params)
        self.hosts[host_id] = ShareHostRecord(host_id, where.agent_id, where.hostname, grant.isolation,
                                              grant.device_memory, params, executor, opened_at=self.now)

    def _mig_layout(self, agent_id: str) -> str:
        """The agent's `gpu_mig` attribute as its offers state it ("" when none)."""
        for offer in self.offers:
            if offer.get("agent_id", {}).get("value") != agent_id:
                continue
            for attribute in offer.get("attributes", ()):
                if attribute.get("name") == ATTR_GPU_MIG:
                    return str(attribute.get("text", {}).get("value", ""))
        return ""


def check_share_plan(plan: CyclePlan, requests: Sequence[GangRequest], hosts: ShareHosts) -> None:
    """Before anything changes: a share task placed with a grant, other tasks without, and every grant
    on an existing host names a known host of that agent (or a plan from a buggy planner is refused)."""
    outcomes = plan.outcomes
    for request in requests:    # the planned ones (`check_plan`: each plan places its request's tasks)
        outcome = outcomes.get(request.job_id)
        if not isinstance(outcome, Plan):
            continue
        tasks = request.tasks
        lone = outcome.only() if len(tasks) == 1 else None
        if lone is not None and lone.share is None:
            if tasks[0].resources.is_share:     # the common case, a whole-GPU or CPU task: checked at once
                raise AssertionError(f"task {tasks[0].name}: share grant None does not fit its request")
            continue
        single = tasks[0].resources.is_share if len(tasks) == 1 else None
        shares = None if single is not None else {task.name: task.resources.is_share for task in tasks}
        for where in outcome.placements:
            grant = where.share
            is_share = single if shares is None else shares.get(where.task_id, False)
            if (grant is not None) != is_share:
                raise AssertionError(f"task {where.task_id}: share grant {grant} does not fit its request")
            if grant is None:
                continue
            if grant.new_host:
                if not grant.host_id.startswith(NEW_HOST_PREFIX):
                    raise AssertionError(f"task {where.task_id}: new share host id {grant.host_id!r}")
                continue
            host = hosts.get(grant.host_id)
            if host is None or host.agent_id != where.agent_id or host.ended or host.closing:
                raise AssertionError(f"task {where.task_id}: share host {grant.host_id} is not one of "
                                     f"{where.agent_id} that takes shares")
