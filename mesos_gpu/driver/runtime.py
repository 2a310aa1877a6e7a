"""The scheduler runtime: one leader (ZooKeeper election) runs the state machine against pymesos.

Threads: pymesos's I/O thread turns callbacks into events; a ticker posts `Tick`s and watches the
master's heartbeats; the election thread reports leadership; ONE worker thread applies every event to
`SchedulerState` and carries out the resulting commands in order (store writes, driver calls). Only
the leader holds a Mesos subscription. Losing leadership stops acting at once and hands over with
`stop(failover=True)`, so tasks keep running for the next leader, which subscribes with the stored
framework id and reconciles. Each driver call first checks the election's flag (dropped as ZooKeeper's
connection drops); each (re-)SUBSCRIBE asks ZooKeeper (`_may_subscribe`); each store write is fenced
(`store.fence`: ZooKeeper commits it only while our election node exists, else NotLeaderError).

The REST API calls `submit`, `kill`, `job`, `jobs`, `jobs_page` and `health` from its own thread. How
the driver is made and how each command becomes a driver call is `mesos_gpu.driver.mesosdriver`'s.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import Any

from mesos_gpu.core.errors import NotFoundError, NotLeaderError
from mesos_gpu.core.model import JobSpec, JobState
from mesos_gpu.core.state import (
    Accept,
    ClearRendezvous,
    Command,
    Decline,
    Event,
    JobsRecovered,
    JobsSubmitted,
    JobSubmitted,
    KillRequested,
    OffersReceived,
    Persist,
    Planner,
    SchedulerState,
    Subscribed,
    Tick,
    new_job_record,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.store.base import Conflict, FrameworkStore, JsonDict, NotFound, StoreError, Versioned

from .framework import FrameworkCallbacks
from .groupcommit import GroupCommit, GroupCommitClosedError
from .mesosdriver import (
    DriverFactory,
    FrameworkOptions,
    SchedulerDriverLike,
    carry_out,
    framework_info_of,
    pymesos_driver_factory,
    stop_for_failover,
)
from .stall import StallGuard

__all__ = [
    "DriverFactory", "FrameworkOptions", "SchedulerDriverLike", "SchedulerRuntime", "pymesos_driver_factory",
]

log = logging.getLogger(__name__)

FRAMEWORK_REMOVED = "Framework has been removed"
SUBMIT_TIMEOUT = 30.0  # how long a submit waits for the state machine to take its job


class SchedulerRuntime:
    """Runs the scheduler for as long as it is started; campaigns for leadership at `start()`."""

    def __init__(
        self,
        *,
        store: FrameworkStore,
        planner: Planner,
        options: FrameworkOptions,
        launch: LaunchSettings,
        identifier: str,
        driver_factory: DriverFactory | None = None,
        heartbeat_timeout: float = 75.0,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        clear_rendezvous: Callable[[str], None] | None = None,
        reserve_after_seconds: float | None = 300.0,
        never_fits_after_seconds: float | None = 300.0,
    ) -> None:
        self.store = store
        self.options = options
        self.identifier = identifier
        self._planner = planner
        self._launch = launch
        self._driver_factory = driver_factory or pymesos_driver_factory(options)
        self._heartbeat_timeout = heartbeat_timeout
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._jitter = jitter
        # Deletes a TF job's rendezvous nodes (see ClearRendezvous); None: nothing to delete.
        self._clear_rendezvous = clear_rendezvous

        self._lock = threading.RLock()  # guards _state and _versions for readers on other threads
        self._reserve_after = reserve_after_seconds
        self._never_fits_after = never_fits_after_seconds
        self._state = self._new_state()
        self._versions: dict[str, int] = {}
        self._queue: queue.Queue[tuple[Any, Future[Any] | None]] = queue.Queue()
        self._leading = False
        self._generation = 0
        self._driver: SchedulerDriverLike | None = None
        self._last_activity = clock()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._election = store.leader_election()
        store.fence(self._election)  # every store write of ours is conditional on our leadership
        self._stall = StallGuard()  # after a pause, ZooKeeper is asked before the next call to the master
        self._submits: GroupCommit[tuple[str, JsonDict, JobSpec], tuple[dict[str, Any], bool]] | None = None
        self.launches = 0  # tasks handed to Mesos by this process (for metrics and tests)
        self.offers_received = 0
        self.offers_declined = 0
        self.submit_batches = 0  # store writes that carried submitted jobs (one group commit each)
        # Set by the composition (e.g. mesos_gpu.api.metrics.Histogram): sees each offer cycle's
        # decision time in seconds through `observe`.
        self.placement_latency: Any = None
        # Set by the API (`mesos_gpu.api.tenants`): the tenants' quotas (`store.settings.TenantsBook`); a
        # new leader reloads them before it places anything, and its state machine asks them every cycle.
        self.tenancy: Any = None

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._submits = GroupCommit(self._commit_submits, name="scheduler-submits")
        self._stall.start()
        for name, target in (("scheduler-worker", self._work), ("scheduler-ticker", self._tick)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._election.campaign(self.identifier, self._elected, self._lost)

    def stop(self) -> None:
        """Leave: resign leadership and hand the framework over (tasks keep running)."""
        self._stopped.set()
        self._stall.stop()
        submits, self._submits = self._submits, None
        if submits is not None:
            submits.close()
        self._election.resign()
        self._stop_driver()
        self._queue.put((None, None))
        for thread in self._threads:
            thread.join(10)

    def teardown(self) -> None:
        """Unregister the framework for good: Mesos kills every task (used by uninstall)."""
        driver = self._driver
        if driver is not None:
            driver.stop(failover=False)
            driver.join()
        self.store.clear_framework_id()

    @property
    def is_leader(self) -> bool:
        return self._may_act()

    def _may_act(self, generation: int | None = None) -> bool:
        """Still the leader (of `generation`, when given), as far as this process knows without asking."""
        return self._leading and generation in (None, self._generation) and self._election.is_leader

    def _may_subscribe(self) -> bool:
        """Before each (re-)SUBSCRIBE (pymesos's thread): ZooKeeper's word where the election has one."""
        if not self._may_act():
            return False
        return self._election.verify_leadership()

    @property
    def master_address(self) -> str | None:
        """`host:port` of the master the driver talks to now (None before it found one)."""
        driver = self._driver
        return getattr(driver, "master", None) if driver is not None else None

    @property
    def mesos_connected(self) -> bool:
        driver = self._driver
        return bool(driver is not None and driver.connected)

    # ------------------------------------------------------------------------------ leadership
    def _elected(self) -> None:
        log.info("elected leader as %s", self.identifier)
        self._post(("elected", None))

    def _lost(self, reason: str) -> None:
        log.warning("leadership lost (%s): stopping at once, tasks keep running", reason)
        self._leading = False
        self._generation += 1
        self._stop_driver()
        self._post(("lost", None))

    def _new_state(self) -> SchedulerState:
        return SchedulerState(self._planner, self._launch, reserve_after_seconds=self._reserve_after,
                              never_fits_after_seconds=self._never_fits_after)

    def _become_leader(self) -> None:
        records = self.store.list()
        if self.tenancy is not None:
            self.tenancy.reload()
        with self._lock:
            self._state = self._new_state()
            self._state.tenancy = lambda: None if self.tenancy is None else self.tenancy.current()
            self._versions = {record.id: record.version for record in records}
            self._state.handle(JobsRecovered(tuple(record.data for record in records), self._clock()))
        self._leading = True
        self._start_driver()

    def _start_driver(self) -> None:
        framework_id = self.store.get_framework_id()
        callbacks = FrameworkCallbacks(
            self.post_event,
            on_activity=self._activity,
            on_error=self._master_error,
            may_subscribe=self._may_subscribe,
            clock=self._clock,
            jitter=self._jitter,
        )
        self._last_activity = self._clock()
        driver = self._driver_factory(callbacks, framework_info_of(self.options, framework_id))
        self._driver = driver
        driver.start()
        log.info("driver started for framework %s (id %s) at %s", self.options.name, framework_id,
                 self.options.master)

    def _stop_driver(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            stop_for_failover(driver)

    def _restart_driver(self, why: str) -> None:
        log.warning("restarting the Mesos driver: %s", why)
        self._stop_driver()
        if self._leading and not self._stopped.is_set():
            self._start_driver()

    def _activity(self) -> None:
        self._last_activity = self._clock()

    def _master_error(self, message: str) -> None:
        if FRAMEWORK_REMOVED in message:
            # Mesos forgot this framework (failover timeout passed, or torn down): register anew.
            self._post(("framework_removed", None))

    # ------------------------------------------------------------------------------ the worker
    def post_event(self, event: Event) -> Future[Any]:
        """Queue an event for the state machine; the future completes once its commands ran."""
        future: Future[Any] = Future()
        self._queue.put((event, future))
        return future

    def call_on_worker(self, action: Callable[[Callable[[], bool]], Any]) -> Future[Any]:
        """Run `action(still_leading)` on the worker thread between two events, while this process leads
        (else the future fails with NotLeaderError): work that changes the state machine and the store
        outside an event (the retention sweep, `mesos_gpu.driver.retention`) runs in order with the
        events, so both stay in step. `still_leading()`: whether the leadership the call started under
        still holds, as far as this process knows (check it before each store write; the writes are
        fenced too). The future completes with what `action` returns."""
        future: Future[Any] = Future()
        self._queue.put((("call", action), future))
        return future

    def _post(self, control: tuple[str, Any]) -> None:
        self._queue.put((control, None))

    def _work(self) -> None:
        while True:
            item, future = self._queue.get()
            if item is None:
                return
            try:
                result = self._apply(item)
                if future is not None:
                    future.set_result(result)
            except NotLeaderError as exc:  # an event that arrived after leadership ended
                log.debug("dropped %s: %s", describe(item), exc)
                if future is not None:
                    future.set_exception(exc)
            except Exception as exc:  # keep the worker alive whatever happens
                log.exception("scheduler worker failed on %s", describe(item))
                if future is not None:
                    future.set_exception(exc)

    def _apply(self, item: Any) -> Any:
        if isinstance(item, tuple):
            kind = item[0]
            if kind == "elected" and not self._stopped.is_set():
                self._become_leader()
            elif kind == "framework_removed" and self._leading:
                self.store.clear_framework_id()
                self._restart_driver("the master removed the framework; registering anew")
            elif kind == "watchdog" and self._leading:
                self._restart_driver(item[1])
            elif kind == "call":
                if not self._leading:
                    raise NotLeaderError(self._election.leader_identifier())
                generation = self._generation
                return item[1](lambda: self._may_act(generation))
            return None
        if not self._leading:
            raise NotLeaderError(self._election.leader_identifier())
        generation = self._generation
        started = time.perf_counter()
        with self._lock:
            commands = self._state.handle(item)
        if isinstance(item, OffersReceived):
            self.offers_received += len(item.offers)
            if self.placement_latency is not None:
                self.placement_latency.observe(time.perf_counter() - started)
        if isinstance(item, Subscribed) and item.framework_id != self.store.get_framework_id():
            self.store.set_framework_id(item.framework_id)
        self._execute(commands, generation)
        return commands

    def _execute(self, commands: list[Command], generation: int) -> None:
        for command in commands:
            if not self._may_act(generation):
                return  # leadership ended (or is in doubt): the next leader reconciles from the store
            if isinstance(command, Persist):
                self._persist(command)
                continue
            if isinstance(command, ClearRendezvous):
                self._clear(command.job_id)
                continue
            driver = self._driver
            if driver is None:
                continue
            if not self._leads_after_stall():
                return  # paused past the session, probably: the next leader reconciles
            try:
                self._call(driver, command)
            except Exception:  # a failed call is repaired by reconciliation and the next offers
                log.exception("driver call failed: %s", describe(command))

    def _leads_after_stall(self) -> bool:
        """True unless this process stalled (e.g. SIGSTOP) since ZooKeeper last confirmed it leads and
        ZooKeeper does not confirm it now (`stall.StallGuard`)."""
        if not self._stall.in_doubt():
            return True
        seen = self._stall.stalls
        if not self._election.verify_leadership():
            log.warning("this process stalled and ZooKeeper does not confirm its leadership: no call made")
            return False
        self._stall.verified(seen)
        return True

    def _clear(self, job_id: str) -> None:
        if self._clear_rendezvous is None:
            return
        try:
            self._clear_rendezvous(job_id)
        except Exception:  # garbage left behind; the next attempt's members replace stale nodes
            log.warning("could not delete the rendezvous nodes of job %s", job_id, exc_info=True)

    def _persist(self, command: Persist) -> None:
        try:
            with self._lock:
                version = self._versions[command.job_id]
            record = self.store.compare_and_set(command.job_id, command.record, version)
            with self._lock:
                self._versions[command.job_id] = record.version
        except (Conflict, NotFound, KeyError, StoreError) as exc:
            # Someone else writes our jobs (another leader) or the store is gone: stop acting now.
            log.error("cannot persist job %s (%s): stepping down", command.job_id, exc)
            self._leading = False
            self._generation += 1
            self._stop_driver()
            self._election.resign()
            if not self._stopped.is_set():
                self._election.campaign(self.identifier, self._elected, self._lost)
            raise

    def _call(self, driver: SchedulerDriverLike, command: Command) -> None:
        if isinstance(command, Decline):
            self.offers_declined += len(command.offer_ids)
        carry_out(driver, command)
        if isinstance(command, Accept):
            self.launches += len(command.task_infos)

    # ------------------------------------------------------------------------------ the ticker
    def _tick(self) -> None:
        while not self._stopped.wait(self._tick_seconds):
            if not self._leading:
                continue
            now = self._clock()
            self.post_event(Tick(now))
            driver = self._driver
            if driver is None:
                continue
            if driver.aborted:
                self._post(("watchdog", "the driver thread stopped"))
            elif driver.connected and now - self._last_activity > self._heartbeat_timeout:
                # pymesos has no heartbeat watchdog: a silent master would hold us forever.
                self._last_activity = now
                self._post(("watchdog", f"no event from the master for {self._heartbeat_timeout:.0f} s"))

    # ------------------------------------------------------------------------------ for the API
    def _require_leader(self) -> None:
        if not self._may_act():
            raise NotLeaderError(self._election.leader_identifier())

    def submit(self, spec: JobSpec, idempotency_key: str | None = None, timeout: float = 30.0) -> tuple[
        dict[str, Any], bool
    ]:
        """Persist a new job (at most once per idempotency key) and hand it to the state machine.

        Returns the job's view and whether it was created now (False: an earlier submit with the same
        key created it). The job is durable before this returns.
        """
        if idempotency_key is None:
            return self.submit_nowait(spec).result(timeout)
        self._require_leader()
        job_id = f"{spec.name}-{uuid.uuid4().hex[:8]}"
        record = new_job_record(job_id, spec, self._clock())
        # Store errors are MesosGpuErrors already: unavailable 503, invalid 400, too large 413.
        try:
            submitted = self.store.submit(job_id, record, idempotency_key)
        except NotLeaderError:  # deposed meanwhile (the store's fence refused it): nothing was stored
            raise NotLeaderError(self._election.leader_identifier()) from None
        if submitted.created:
            with self._lock:
                self._versions[submitted.record.id] = submitted.record.version
            self._hand_over_stored(JobSubmitted(submitted.record.data, self._clock(), spec), timeout)
        return self.job(submitted.record.id), submitted.created

    def _hand_over_stored(self, event: JobSubmitted | JobsSubmitted, timeout: float) -> None:
        """Give stored jobs to the state machine. Deposed since the fenced write committed, they are
        answered as created all the same: durable, they are listed by whoever leads next (a 503 here
        would tell the client to submit again, and without an idempotency key make a second job)."""
        try:
            self.post_event(event).result(timeout)
        except NotLeaderError:
            log.warning("leadership ended after the submitted jobs were stored: answered as created")

    def submit_nowait(self, spec: JobSpec) -> Future[tuple[dict[str, Any], bool]]:
        """`submit` without an idempotency key, without blocking: the future completes with (the job's
        view, True) once the job is durable and the state machine has it, or with the store's error.
        Concurrent submits share one store write and one state-machine event (a group commit).
        Raises NotLeaderError at once on a standby."""
        submits = self._submits
        if not self._may_act() or submits is None:
            raise NotLeaderError(None)  # the API asks the election who leads, off the IOLoop
        job_id = f"{spec.name}-{uuid.uuid4().hex[:8]}"
        record = new_job_record(job_id, spec, self._clock())
        try:
            return submits.submit((job_id, record, spec))
        except GroupCommitClosedError:
            raise NotLeaderError(None) from None      # stopping: this process leads no more

    def _commit_submits(
        self, batch: list[tuple[str, JsonDict, JobSpec]]
    ) -> list[tuple[dict[str, Any], bool] | Exception]:
        """The group commit of new jobs: one `create_many`, then one event for all that were created;
        answered with their views once the state machine has them, as `submit` promises."""
        self._require_leader()
        self.submit_batches += 1
        results = self.store.create_many([(job_id, record) for job_id, record, _ in batch])
        created = [(result, spec) for result, (_, _, spec) in zip(results, batch, strict=True)
                   if isinstance(result, Versioned)]
        if created:
            with self._lock:
                for record, _ in created:
                    self._versions[record.id] = record.version
            now = self._clock()
            each = tuple(JobSubmitted(record.data, now, spec) for record, spec in created)
            self._hand_over_stored(JobsSubmitted(each, now), SUBMIT_TIMEOUT)
        with self._lock:
            views = {r.id: self._state_view(r.id) for r in results if isinstance(r, Versioned)}
        answers: list[tuple[dict[str, Any], bool] | Exception] = []
        refused = any(isinstance(result, NotLeaderError) for result in results)  # by the store's fence
        leader = self._election.leader_identifier() if refused else None  # API: 307 there, or 503
        for result in results:
            if isinstance(result, Versioned):
                view = views[result.id]
                # Not in the state machine (rare): read the store, with no lock held.
                answers.append((view if view is not None else self.job(result.id), True))
            else:
                answers.append(NotLeaderError(leader) if isinstance(result, NotLeaderError) else result)
        return answers

    def _state_view(self, job_id: str) -> dict[str, Any] | None:
        """The job's view from the state machine (hold `_lock`), None when it is not there."""
        job = self._state.jobs.get(job_id)
        if job is None:
            return None
        view = job.to_dict()
        view["wait_reason"] = job.wait_reason
        return view

    def kill(self, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
        self._require_leader()
        self.job(job_id)  # NotFoundError when unknown
        self.post_event(KillRequested(job_id, self._clock())).result(timeout)
        return self.job(job_id)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's view: its record plus what is only in memory (why it waits)."""
        with self._lock:
            job = self._state.jobs.get(job_id)
            if job is not None:
                view = job.to_dict()
                view["wait_reason"] = job.wait_reason
                return view
        try:
            return dict(self.store.get(job_id).data, wait_reason="")
        except NotFound as exc:
            raise NotFoundError(f"no job {job_id!r}") from exc

    def jobs(self, state: JobState | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every job's view (of `state`, of `tenant`), by (submitted_at, id): O(all jobs), see `jobs_page`."""
        if self._leading:
            with self._lock:
                jobs = self._state.jobs.values()
                views = [dict(job.to_dict(), wait_reason=job.wait_reason) for job in jobs]
        else:
            views = [dict(record.data, wait_reason="") for record in self.store.list()]
        return _matching(views, None if state is None else (state,), tenant)

    def jobs_page(
        self, states: Collection[JobState] | None = None, tenant: str | None = None, offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], int]:
        """`jobs()[offset : offset + limit]` for any of `states` (None: all), and how many jobs match in
        all. While leading, from the state machine's job list: views of the page's jobs only."""
        if self._leading:
            with self._lock:
                page, total = self._state.jobs_page(states, tenant, offset, limit)
                return [dict(job.to_dict(), wait_reason=job.wait_reason) for job in page], total
        views = _matching([dict(record.data, wait_reason="") for record in self.store.list()], states, tenant)
        return views[offset : offset + limit], len(views)

    def tenant_summaries(self) -> list[Any] | None:
        """Each tenant's quota, GPUs in use and borrowed, and jobs waiting, from the state machine
        (`SchedulerState.tenant_summaries`); None when this process does not lead."""
        with self._lock:
            return self._state.tenant_summaries(self._clock()) if self._leading else None

    def health(self) -> dict[str, Any]:
        return {
            "leader": self._leading,
            "leader_identifier": self._election.leader_identifier(),
            "mesos_connected": self.mesos_connected,
            "framework_id": self._state.framework_id,
        }


def _matching(
    views: list[dict[str, Any]], states: Collection[JobState] | None, tenant: str | None
) -> list[dict[str, Any]]:
    """The views in one of `states` of `tenant` (None: any), by (submitted_at, id): the list's order."""
    wanted = None if states is None else {state.value for state in states}
    kept = [view for view in views if (wanted is None or view["state"] in wanted)
            and (tenant is None or view["spec"].get("tenant") == tenant)]
    return sorted(kept, key=lambda view: (view["submitted_at"], view["id"]))


_NAMED = ("job_id", "task_id", "agent_id")


def describe(item: Any) -> str:
    """An event or command for a log line: its kind and the ids it names, never its contents (records
    and TaskInfos carry env values, which may be secrets)."""
    if isinstance(item, tuple):
        return f"control message {item[0]!r}" if item else "control message"
    ids = ", ".join(f"{name}={getattr(item, name)}" for name in _NAMED if getattr(item, name, None))
    return f"{type(item).__name__}({ids})"
