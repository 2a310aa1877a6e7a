"""Calls to the master that failed while the subscription may still be up, made again (`FailedCalls`).

A call can fail without the subscription ending (a reset connection, a timeout, a 5xx from the master).
What it meant is then lost unless it is made again: the offers of a failed ACCEPT or DECLINE would stay
outstanding, their resources offered to no one (Mesos has no offer timeout unless the operator sets
`--offer_timeout`); a failed KILL would leave the task running; a failed REVIVE would leave the framework
suppressed while jobs wait. So after the next events' calls (`CommandRunner._execute`) these are made
again: the offers declined (one that reached the master anyway was used or declined, and the master
ignores a decline of an offer it no longer holds), the kills sent again, and the last REVIVE or SUPPRESS
(a later one that succeeded supersedes it). The tasks of a failed ACCEPT are not launched again here: the
state machine asks the master about launches it hears nothing of (`core.launchcheck`) and places again
those Mesos never saw. A (re)subscription makes all of it moot (the master takes every offer back, and
the state machine kills again, reconciles and decides REVIVE or SUPPRESS anew): `forget`. They are
never given up before that (a REVIVE given up would leave waiting jobs without offers for ever while
the subscription stays up), but tried at most every `RETRY_SECONDS` while they keep failing, each kind
on its own (a decline that keeps failing does not hold back a kill).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mesos_gpu.core.commands import Accept, Command, Decline, KillTask, Revive, Suppress

log = logging.getLogger(__name__)

#: The least time between two tries while they keep failing (a burst of events tries once).
RETRY_SECONDS = 1.0


class FailedCalls:
    """What failed calls meant, to be made again (see the module docstring). The worker's only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._offers: dict[str, float] = {}    # offer id -> the failed answer's refuse seconds
        self._kills: dict[str, KillTask] = {}  # by task id
        self._interest: Revive | Suppress | None = None
        self._clock = clock
        self._next_try = 0.0
        self._failures = 0

    def __bool__(self) -> bool:
        return bool(self._offers or self._kills or self._interest is not None)

    def failed(self, command: Command) -> None:
        """`command`'s call failed."""
        if isinstance(command, Accept | Decline):
            self._offers.update(dict.fromkeys(command.offer_ids, command.refuse_seconds))
        elif isinstance(command, KillTask):
            self._kills[command.task_id] = command
        elif isinstance(command, Revive | Suppress):
            self._interest = command

    def succeeded(self, command: Command) -> None:
        """`command`'s call succeeded: a REVIVE or SUPPRESS supersedes an earlier one that failed."""
        if isinstance(command, Revive | Suppress):
            self._interest = None

    def again(self, call: Callable[[Command], None]) -> None:
        """Make the failed calls again through `call` (unless the last try failed less than
        `RETRY_SECONDS` ago): the declines, each kill, then the REVIVE or SUPPRESS."""
        now = self._clock()
        if now < self._next_try:
            return
        errors: list[Exception] = []
        by_refuse: dict[float, list[str]] = {}
        for offer_id, refuse in self._offers.items():
            by_refuse.setdefault(refuse, []).append(offer_id)
        for refuse, offer_ids in by_refuse.items():
            if self._made(call, Decline(tuple(offer_ids), refuse), errors):
                for offer_id in offer_ids:
                    del self._offers[offer_id]
        for task_id, kill in list(self._kills.items()):
            if self._made(call, kill, errors):
                del self._kills[task_id]
        if self._interest is not None and self._made(call, self._interest, errors):
            self._interest = None
        if not errors:
            log.info("calls that had failed were made again")
            self._failures = 0
            return
        self._failures += 1
        self._next_try = now + RETRY_SECONDS
        log.warning("%d calls that had failed failed again (%s; %d tries): tried again in %.0f s or later",
                    len(errors), errors[0], self._failures, RETRY_SECONDS)

    @staticmethod
    def _made(call: Callable[[Command], None], command: Command, errors: list[Exception]) -> bool:
        try:
            call(command)
        except Exception as exc:
            errors.append(exc)
            return False
        return True

    def forget(self) -> None:
        """A (re)subscription or a new term: nothing to make again."""
        self._offers.clear()
        self._kills.clear()
        self._interest = None
        self._next_try = 0.0
        self._failures = 0
