"""How the runtime's worker carries out the state machine's commands, in order: fenced store writes first
(`Persist`), rendezvous clean-up, then driver calls, each only while the leadership the event started
under still holds (`mesos_gpu.driver.runtime` is the worker; this is its part that acts).

`CommandRunner` holds the leadership flags (`_leading`, `_generation`, `_driver`): the worker thread alone
writes them; other threads only read them (`_may_act`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from mesos_gpu.core.state import Accept, ClearRendezvous, Command, Decline, Event, OffersReceived, Persist
from mesos_gpu.store.base import Conflict, FrameworkStore, NotFound, StoreError

from .callagain import FailedCalls
from .control import describe
from .mesosdriver import SchedulerDriverLike, carry_out
from .stall import StallGuard

log = logging.getLogger(__name__)


class CommandRunner:
    """The acting half of the runtime (see the module docstring); `SchedulerRuntime` is the other."""

    _election: Any
    placement_latency: Any

    def __init__(self, store: FrameworkStore, clear_rendezvous: Callable[[str], None] | None) -> None:
        self.store = store
        # Deletes a TF job's rendezvous nodes (see ClearRendezvous); None: nothing to delete.
        self._clear_rendezvous = clear_rendezvous
        self._leading = False
        self._generation = 0
        self._driver: SchedulerDriverLike | None = None
        self._versions: dict[str, int] = {}  # each job's store version (the worker's only)
        self._stall = StallGuard()  # after a pause, ZooKeeper is asked before the next call to the master
        self.launches = 0  # tasks handed to Mesos by this process (for metrics and tests)
        self.offers_received = 0
        self.offers_declined = 0
        self._failed = FailedCalls()    # made again after the next events' calls (`callagain`)

    def _may_act(self, generation: int | None = None) -> bool:
        """Still the leader (of `generation`, when given), as far as this process knows without asking."""
        return self._leading and generation in (None, self._generation) and self._election.is_leader

    def _cannot_persist(self, job_id: str, exc: Exception) -> None:
        raise NotImplementedError

    def after_decision(self, event: Event, started: float) -> None:
        """Count an offer cycle's offers and let `placement_latency` see its decision time."""
        if isinstance(event, OffersReceived):
            self.offers_received += len(event.offers)
            if self.placement_latency is not None:
                self.placement_latency.observe(time.perf_counter() - started)

    def _execute(self, commands: list[Command], generation: int,
                 stored: Callable[[], None] | None = None) -> bool:
        """Carry out `commands` in order; False when leadership ended (or is in doubt) before all were:
        the rest is left to the next leader, which reconciles from the store. `stored` is called once the
        records are stored, before any other command (the snapshot API reads see: stored states only)."""
        persists = [command for command in commands if isinstance(command, Persist)]
        if persists:    # the state machine puts them first: one write for all (`compare_and_set_many`)
            if not self._may_act(generation):
                return False
            self._persist(persists)
        if stored is not None:
            stored()
        for command in commands:
            if not self._may_act(generation):
                return False
            if isinstance(command, Persist):
                continue
            if isinstance(command, ClearRendezvous):
                self._clear(command.job_id)
                continue
            driver = self._driver
            if driver is None:
                continue
            if not self._leads_after_stall():
                return False  # paused past the session, probably: the next leader reconciles
            try:
                self._call(driver, command)
            except Exception:  # made again after this event's calls (`callagain`)
                log.exception("driver call failed: %s", describe(command))
                self._failed.failed(command)
            else:
                self._failed.succeeded(command)
        driver = self._driver
        if self._failed and driver is not None and self._may_act(generation) and self._leads_after_stall():
            self._failed.again(lambda command: self._call(driver, command))
        return True

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

    def _persist(self, persists: list[Persist]) -> None:
        """Store the records of `persists` (each job once), each at the version this process last wrote."""
        versions = self._versions
        unknown = next((command.job_id for command in persists if command.job_id not in versions), None)
        if unknown is not None:
            exc = KeyError(unknown)
            self._cannot_persist(unknown, exc)
            raise exc
        try:
            written = self.store.compare_and_set_many(
                [(command.job_id, command.record, versions[command.job_id]) for command in persists])
        except (Conflict, NotFound, StoreError) as exc:
            which = persists[0].job_id if len(persists) == 1 else f"(one of {len(persists)})"
            self._cannot_persist(getattr(exc, "key", None) or which, exc)
            raise
        for command, version in zip(persists, written, strict=True):
            versions[command.job_id] = version

    def _call(self, driver: SchedulerDriverLike, command: Command) -> None:
        if isinstance(command, Decline):
            self.offers_declined += len(command.offer_ids)
        carry_out(driver, command)
        if isinstance(command, Accept):
            self.launches += len(command.task_infos)
