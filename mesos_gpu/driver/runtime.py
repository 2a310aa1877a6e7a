"""The scheduler runtime: one leader (ZooKeeper election) runs the state machine against pymesos.

ONE worker thread owns leadership and state: it alone writes the leadership flags (`_leading`,
`_generation`, `_driver`), the state machine and the store versions, applying in order every item of its
queue: the state machine's events (pymesos's I/O thread turns callbacks into them; the ticker posts
`Tick`s) and the runtime's typed messages (`mesos_gpu.driver.control`: `Elected`, `LeadershipLost`,
`WatchdogFired`, `DriverError`, `JobsStored`, `WorkerCall`, `Stop`). The other threads only post. After
each item the worker carries out the commands in order (store writes, driver calls) and publishes an
immutable snapshot of the jobs (`mesos_gpu.driver.snapshot`) that every API read is served from
(`.reads`), so a GET never waits for an offer cycle.

Only the leader holds a Mesos subscription. Losing leadership stops acting at once (every command first
checks the election's own flag, dropped as ZooKeeper's connection drops) and the worker then hands over
with `stop(failover=True)`, so tasks keep running for the next leader, which subscribes with the stored
framework id and reconciles. Each (re-)SUBSCRIBE asks ZooKeeper (`_may_subscribe`); each store write is
fenced (`store.fence`: ZooKeeper commits it only while our election node exists, else NotLeaderError).
New jobs, with or without an idempotency key, go through one group-committed path (`.submits`).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from mesos_gpu.core.errors import NotLeaderError, UnavailableError
from mesos_gpu.core.model import JobSpec
from mesos_gpu.core.placement.offers import AgentSlot
from mesos_gpu.core.preempt import Preemption
from mesos_gpu.core.profiles import ProfilesConfig
from mesos_gpu.core.profilesapply import effective_tenants
from mesos_gpu.core.sharehosts import ShareHosts
from mesos_gpu.core.state import (
    Event,
    JobsRecovered,
    KillRequested,
    OffersReceived,
    Planner,
    SchedulerState,
    Subscribed,
    Tick,
)
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.store.base import FrameworkStore, Versioned

from . import snapshot
from .actions import CommandRunner
from .changes import changed_records, named_jobs
from .control import (
    DriverError,
    Elected,
    Item,
    JobsStored,
    LeadershipLost,
    Stop,
    WatchdogFired,
    WorkerCall,
    describe,
)
from .eventlog import JobStateLog
from .framework import FrameworkCallbacks
from .mesosdriver import (
    DriverFactory,
    FrameworkOptions,
    SchedulerDriverLike,
    framework_info_of,
    pymesos_driver_factory,
    stop_for_failover,
)
from .quarantine import StoredFailures, recover_quarantining
from .reads import JobReads
from .snapshot import Snapshot
from .submits import SUBMIT_TIMEOUT, SubmitPath

__all__ = [
    "DriverFactory", "FrameworkOptions", "SchedulerDriverLike", "SchedulerRuntime", "describe",
    "pymesos_driver_factory",
]

log = logging.getLogger(__name__)
NO_DRIVER = "no Mesos driver"   # the watchdog's reason when a leader has none

FRAMEWORK_REMOVED = "Framework has been removed"
JobView = dict[str, Any]


class SchedulerRuntime(CommandRunner, JobReads):
    """Runs the scheduler for as long as it is started; campaigns for leadership at `start()`.

    Collaborators come in here: `placement_latency` (e.g. `mesos_gpu.api.metrics.Histogram`) sees each
    offer cycle's decision time through `observe`; `tenancy` (`store.settings.TenantsBook`) holds the
    tenants' quotas, reloaded by each new leader before it places anything and asked every cycle."""

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
        launch_check_seconds: float | None = 60.0,
        placement_latency: Any = None,
        tenancy: Any = None,
        preemption_grace_seconds: float | None = None,
        agent_catalog: Callable[[], Sequence[AgentSlot] | None] | None = None,
    ) -> None:
        super().__init__(store, clear_rendezvous)
        self.options = options
        self.identifier = identifier
        self._planner = planner
        self._launch = launch
        self._driver_factory = driver_factory or pymesos_driver_factory(options)
        self._heartbeat_timeout = heartbeat_timeout
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._jitter = jitter
        self.placement_latency = placement_latency
        self.tenancy = tenancy   # built by scheduler_main; the API's tenants routes use this one
        self._preemption_grace = preemption_grace_seconds   # None: never preempt
        self._agent_catalog = agent_catalog     # every agent's attributes, for preemption's trial plans
        self._stored_failures = StoredFailures()   # stored jobs the state machine failed on (the worker's)

        # Held by the worker while the state machine changes, for the few readers of the live state
        # (`tenant_summaries`; the retention sweep runs on the worker). API reads use the snapshot.
        self._lock = threading.RLock()
        self._job_states = JobStateLog()   # shared with each driver's callbacks: one line per change
        self._reserve_after = reserve_after_seconds
        self._never_fits_after = never_fits_after_seconds
        self._launch_check = launch_check_seconds
        self._state = self._new_state()
        self._snapshot = Snapshot()
        self._framework_id: str | None = None   # the worker's: as stored when its driver started, or since
        self._queue: queue.Queue[tuple[Item, Future[Any] | None]] = queue.Queue()
        self._last_activity = clock()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._election = store.leader_election()
        store.fence(self._election)  # every store write of ours is conditional on our leadership
        self._submits = SubmitPath(store, may_act=self._may_act, leader=self._election.leader_identifier,
                                   hand_over=self._post, known=self._snapshot_view, view=self.job,
                                   clock=clock)

    @property
    def submit_batches(self) -> int:
        """Store writes that carried submitted jobs (one group commit each)."""
        return self._submits.batches

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._submits.start()
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
        self._submits.close()
        self._election.resign()
        self._queue.put((Stop(), None))
        for thread in self._threads:
            thread.join(10)
        driver = self._driver
        if driver is not None and any(thread.is_alive() for thread in self._threads):
            log.warning("the scheduler worker did not stop in time: stopping the Mesos driver from here")
            stop_for_failover(driver)

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

    def _may_subscribe(self) -> bool:
        """Before each (re-)SUBSCRIBE (pymesos's thread): ZooKeeper's word where the election has one."""
        if not self._may_act():
            return False
        return self._election.verify_leadership()

    @property
    def quarantined_skipped(self) -> int:
        """How many stored jobs this leader's recovery leaves out (quarantined `skip` records,
        `mesos_gpu.driver.quarantine`); read from any thread."""
        return len(self._stored_failures.skipped)

    @property
    def master_address(self) -> str | None:
        """`host:port` of the master the driver talks to now (None before it found one)."""
        driver = self._driver
        return getattr(driver, "master", None) if driver is not None else None

    @property
    def mesos_connected(self) -> bool:
        driver = self._driver
        return bool(driver is not None and driver.connected)

    # ------------------------------------------------------------------------------ callbacks: post only
    def _elected(self) -> None:
        log.info("elected leader as %s", self.identifier)
        self._post(Elected())

    def _lost(self, reason: str) -> None:
        log.warning("leadership lost (%s): stopping at once, tasks keep running", reason)
        self._post(LeadershipLost(reason))

    def _activity(self) -> None:
        self._last_activity = self._clock()

    def _master_error(self, message: str, driver: object) -> None:
        self._post(DriverError(message, driver))

    def post_event(self, event: Event) -> Future[Any]:
        """Queue an event for the state machine; the future completes once its commands ran."""
        return self._post(event)

    def call_on_worker(self, action: Callable[[Callable[[], bool]], Any]) -> Future[Any]:
        """Run `action(still_leading)` on the worker thread between two events, while this process leads
        (else the future fails with NotLeaderError): work that changes the state machine and the store
        outside an event (the retention sweep, `mesos_gpu.driver.retention`) runs in order with the
        events, so both stay in step. `still_leading()`: whether the leadership the call started under
        still holds, as far as this process knows (check it before each store write; the writes are
        fenced too). The future completes with what `action` returns."""
        return self._post(WorkerCall(action))

    def _post(self, item: Item) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((item, future))
        return future

    # ------------------------------------------------------------------------------ the worker
    def _work(self) -> None:
        while True:
            item, future = self._queue.get()
            if isinstance(item, Stop):
                self._step_down()
                if future is not None:
                    future.set_result(None)
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

    def _apply(self, item: Item) -> Any:
        match item:
            case Elected():
                if not self._stopped.is_set():
                    self._take_charge()
            case LeadershipLost():
                self._step_down()
            case WatchdogFired(why=why, driver=driver) if self._leading and driver is self._driver:
                self._restart_driver(why)   # (about an older driver, or None since one started: ignored)
            case DriverError(message=message, driver=driver) if (
                    self._leading and driver is self._driver and FRAMEWORK_REMOVED in message):
                # Mesos forgot this framework (failover timeout passed, or torn down): register anew.
                self.store.clear_framework_id()
                self._restart_driver("the master removed the framework; registering anew")
            case JobsStored():   # versions the worker holds already are newer (a late batch: keep them)
                for job_id, version in item.versions:
                    self._versions.setdefault(job_id, version)
                return self._take_stored(item)
            case WorkerCall(action=action):
                self._require_leading()
                generation = self._generation
                try:
                    return action(lambda: self._may_act(generation))
                finally:
                    self._publish(listed=True)
            case Elected() | LeadershipLost() | WatchdogFired() | DriverError() | Stop():
                pass  # not for this process now
            case _:
                return self._handle_or_resign(item)
        return None

    def _handle_or_resign(self, event: Event) -> Any:
        """`_handle`, resigning when it fails: a state machine that raised mid-event (or commands that did
        not get carried out) leaves this term's memory half-changed with nothing of it stored, and the
        event's offers unanswered. The term is not trusted further: it resigns (its driver stops, so the
        master takes the offers back) and the next term, here or in another process, recovers from the
        store, with Mesos' reconciliation saying what runs. (Stored jobs the state machine fails on are
        `_take_stored`'s, which quarantines them; the same for other events would need the event kept.)"""
        generation = self._generation
        try:
            return self._handle(event)
        except NotLeaderError:
            raise
        except Exception:
            if self._generation == generation:    # (a store write that failed has resigned already)
                log.error("the state machine failed on %s: resigning so that a leader recovers from the "
                          "store", describe(event))
                self._resign()
            raise

    def _handle(self, event: Event) -> Any:
        """One state machine event: apply it, store its records, publish the snapshot (API reads see
        stored states only), then make its calls to Mesos."""
        self._require_leading()
        generation = self._generation
        named = named_jobs(self._state, event)   # before: a task that ends leaves the task index
        started = time.perf_counter()
        with self._lock:
            commands = self._state.handle(event)

        def publish() -> None:   # on this thread, before any other event: the state is the event's
            if isinstance(event, JobsRecovered):
                self._snapshot = snapshot.full(self._state, self._leading)
            else:
                self._publish(records=changed_records(event, commands, self._snapshot), named=named,
                              waiting=isinstance(event, OffersReceived))

        self.after_decision(event, started)
        if isinstance(event, Tick | KillRequested):   # decided without a Mesos update (pymesos's are
            self._job_states.observe(commands)          # logged by FrameworkCallbacks once decided)
        if isinstance(event, Subscribed):
            self._failed.forget()   # the master took its offers back; the state machine repairs the rest
            if event.framework_id != self._framework_id:
                self.store.set_framework_id(event.framework_id)   # (compared with the id the worker holds:
                self._framework_id = event.framework_id            # no ZooKeeper read per SUBSCRIBED)
        if not self._execute(commands, generation, publish):   # e.g. a kill decided, never stored: not done
            raise NotLeaderError(None)
        return commands

    def _require_leading(self) -> None:
        """NotLeaderError unless this process leads, by its own flag AND the election's (a loss the worker
        has not reached yet counts: its LeadershipLost may be queued behind this item).

        The error names no leader: the worker does not ask ZooKeeper who leads (up to its 15 s deadline
        while ZooKeeper is away, holding every event behind it). The API answers 503 "retry soon"; the
        retry, refused by this process's own flag, is redirected to the leader (asked off the worker).
        (The worker reads ZooKeeper only to take charge, to start a driver (the framework id), after a
        stall (`verify_leadership`) and to resign: never per event or per SUBSCRIBED.)"""
        if not self._may_act():
            raise NotLeaderError(None)

    def _publish(self, *, records: Mapping[str, Mapping[str, Any]] | None = None, named: Collection[str] = (),
                 listed: bool = False, waiting: bool = False) -> None:
        self._snapshot = snapshot.following(self._snapshot, self._state, self._leading,
                                            records=records or {}, named=named, listed=listed,
                                            waiting=waiting)

    # ------------------------------------------------------------------------------ leadership (worker)
    def _new_state(self) -> SchedulerState:
        return SchedulerState(self._planner, self._launch, reserve_after_seconds=self._reserve_after,
                              never_fits_after_seconds=self._never_fits_after,
                              launch_check_seconds=self._launch_check,
                              share_hosts=ShareHosts(profiles=self._profiles),
                              preemption=None if self._preemption_grace is None
                              else Preemption(self._preemption_grace, catalog=self._agent_catalog))

    def _profiles(self) -> ProfilesConfig | None:
        config = self.tenancy.current() if self.tenancy is not None else None
        return None if config is None else config.profiles

    def _tenants(self) -> TenantsConfig | None:
        """The tenants document with the quota overrides of the GPU profile in force now."""
        return None if self.tenancy is None else effective_tenants(self.tenancy.current(), self._clock())

    def _become_leader(self) -> None:
        records = self.store.list()
        if self.tenancy is not None:
            self.tenancy.reload()
        # (not under self._lock: a quarantine writes to the store; each trial state is swapped in under it,
        # and readers of the live state answer None until this process leads)
        recover_quarantining(self._recover, records, self._stored_failures, self.store, self._clock())
        # The new term's snapshot first: a reader that sees this process lead (`is_leader`) must never
        # be answered from the previous term's snapshot.
        self._snapshot = snapshot.full(self._state, True)
        self._leading = True
        self._start_driver()

    def _recover(self, records: Sequence[Versioned[dict[str, Any]]]) -> None:
        """A new term's state, from the stored records."""
        state = self._new_state()
        state.tenancy = self._tenants
        state.handle(JobsRecovered(tuple(record.data for record in records), self._clock()))
        with self._lock:
            self._state = state
            self._versions = {record.id: record.version for record in records}

    def _take_stored(self, item: JobsStored) -> Any:
        """The jobs a submit batch stored. Should the state machine fail on them, they are stored (and
        answered created) but unknown to this leader: resign, so that the next leader lists them (the
        failure is counted: should a new term's recovery fail on them again, they are quarantined
        rather than bouncing leadership, `mesos_gpu.driver.quarantine`)."""
        try:
            return self._handle(item.event)
        except NotLeaderError:
            raise
        except Exception:
            log.exception("the state machine failed on %d stored jobs: resigning so that they are listed",
                          len(item.versions))
            self._stored_failures.failed(job_id for job_id, _ in item.versions)
            self._resign()
            raise

    def _step_down(self) -> None:
        """Stop acting: the flags first (commands in flight check them) and a snapshot that no longer
        leads (readers: health, lists), then the driver (failover; its thread may take a while)."""
        self._leading = False
        self._generation += 1
        self._publish()
        self._stop_driver()
        self._failed.forget()

    def _start_driver(self) -> None:
        framework_id = self._framework_id = self.store.get_framework_id()
        callbacks = FrameworkCallbacks(
            self.post_event,
            on_activity=self._activity,
            on_error=self._master_error,
            may_subscribe=self._may_subscribe,
            clock=self._clock,
            jitter=self._jitter,
            job_states=self._job_states,
        )
        self._last_activity = self._clock()
        driver = self._driver_factory(callbacks, framework_info_of(self.options, framework_id))
        driver.start()   # first: pymesos reports an unstarted driver aborted (the ticker would restart it)
        self._driver = driver   # (a failed start leaves None: the ticker's NO_DRIVER watchdog retries)
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

    def _take_charge(self) -> None:
        """Become the leader; if that fails (e.g. the store cannot be listed), give the leadership up so
        that a standby can take it rather than holding the election while scheduling nothing."""
        try:
            self._become_leader()
        except Exception:
            log.exception("taking charge as the leader failed: resigning")
            self._resign()

    def _resign(self) -> None:
        self._step_down()   # readers (health, lists) no longer see a leader's snapshot
        self._election.resign()
        if not self._stopped.is_set():
            self._election.campaign(self.identifier, self._elected, self._lost)

    def _cannot_persist(self, job_id: str, exc: Exception) -> None:
        """Someone else writes our jobs (another leader) or the store is gone: stop acting now."""
        log.error("cannot persist job %s (%s): stepping down", job_id, exc)
        self._resign()

    # ------------------------------------------------------------------------------ the ticker
    def _tick(self) -> None:
        while not self._stopped.wait(self._tick_seconds):
            if not self._leading:
                continue
            now = self._clock()
            self.post_event(Tick(now))
            driver = self._driver
            if driver is None:   # its start failed (e.g. the store was slow): try again each tick
                self._post(WatchdogFired(NO_DRIVER, None))
                continue
            if driver.aborted:
                self._post(WatchdogFired("the driver thread stopped", driver))
            elif driver.connected and now - self._last_activity > self._heartbeat_timeout:
                # pymesos has no heartbeat watchdog: a silent master would hold us forever.
                self._last_activity = now
                silent = f"no event from the master for {self._heartbeat_timeout:.0f} s"
                self._post(WatchdogFired(silent, driver))

    # ------------------------------------------------------------------------------ for the API
    def submit(self, spec: JobSpec, idempotency_key: str | None = None, timeout: float = SUBMIT_TIMEOUT
               ) -> tuple[JobView, bool]:
        """Persist a new job (at most once per idempotency key) and hand it to the state machine.

        Returns the job's view and whether it was created now (False: an earlier submit with the same
        key created it). The job is durable before this returns. Blocks: `submit_nowait` does not."""
        try:
            pending = self._submits.submit(spec, idempotency_key)
        except NotLeaderError:
            raise NotLeaderError(self._election.leader_identifier()) from None
        try:
            return pending.result(timeout)
        except TimeoutError:   # e.g. ZooKeeper away: the job may be stored (a key makes the retry safe)
            raise UnavailableError(f"the scheduler did not take the job within {timeout:.0f} s; it may "
                                   "still run: submit it again with the same idempotency key") from None

    def submit_nowait(
        self, spec: JobSpec, idempotency_key: str | None = None
    ) -> Future[tuple[JobView, bool]]:
        """`submit` without blocking: the future completes with (the job's view, created) once the job is
        durable and the state machine has it, or with the store's error. Concurrent submits share one
        group commit and one state-machine event. Raises NotLeaderError(None) at once on a standby."""
        return self._submits.submit(spec, idempotency_key)

    def kill(self, job_id: str, timeout: float = 30.0) -> JobView:
        if not self._may_act():
            raise NotLeaderError(self._election.leader_identifier())
        self.job(job_id)  # NotFoundError when unknown
        self.post_event(KillRequested(job_id, self._clock())).result(timeout)
        return self.job(job_id)

    def tenant_summaries(self) -> list[Any] | None:
        """Each tenant's quota, GPUs in use and borrowed, and jobs waiting, from the live state machine
        (`SchedulerState.tenant_summaries`: waits for the event in progress); None when not leading."""
        with self._lock:
            return self._state.tenant_summaries(self._clock()) if self._leading else None

    def profile_view(self, now: float) -> dict[str, Any] | None:
        """The GPU profile in force and the next switch (`ShareHosts.profile_view`), from the live state
        machine (waits for the event in progress); None when not leading or without profiles."""
        with self._lock:
            return self._state.share_hosts.profile_view(now) if self._leading else None

    def health(self) -> dict[str, Any]:
        current = self._snapshot
        return {
            "leader": current.leading,
            "leader_identifier": self._election.leader_identifier(),
            "mesos_connected": self.mesos_connected,
            "framework_id": current.framework_id,
        }

