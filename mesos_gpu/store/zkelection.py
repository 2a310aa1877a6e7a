"""Leader election in ZooKeeper (the kazoo Election recipe's node layout, with the store's retries).

Contenders are ephemeral-sequential nodes `<root>/leader/<uuid>__lock__<seq>` holding the contender's
identifier (its API host:port); the lowest sequence number leads.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from kazoo.exceptions import KazooException, NoNodeError
from kazoo.protocol.states import KazooState, KeeperState

from mesos_gpu.store.base import LeaderElection
from mesos_gpu.store.election import Leadership
from mesos_gpu.store.zkclient import COMMAND_DEADLINE_S, BoundedCalls, call_with_retry

log = logging.getLogger(__name__)

_CONTENDER_MARK = "__lock__"  # kazoo's Lock/Election node name, so `Election(...).contenders()` reads ours
_CONTENDER_RE = re.compile(r"__lock__(-?\d{10})$")
VERIFY_TIMEOUT_S = 3.0
"""How long each ZooKeeper call of `verify_leadership` waits for its answer."""


class ZooKeeperLeaderElection:
    """Leader election with ephemeral-sequential nodes under `path` (see `LeaderElection`).

    The lowest sequence number leads; every other contender watches only its predecessor (no herd
    effect). Node names and data follow kazoo's Election recipe, so `Election(client, path)
    .contenders()` lists the same identifiers. Leadership is dropped the moment kazoo reports
    SUSPENDED or LOST, before any callback runs; after a reconnection the contender campaigns again.

    Example::

        election = store.leader_election()     # a ZooKeeperLeaderElection under <root>/leader
        election.campaign("10.0.0.5:8080", on_elected=start_driver, on_lost=stop_driver)
        election.leader_identifier()           # "10.0.0.5:8080" once elected
        election.verify_leadership()           # True: ZooKeeper itself says we lead, now
        election.resign()                      # on_lost("resigned"), then the node is deleted
    """

    POLL_S = 2.0
    """How often the campaign thread re-checks the election even without a watch event."""

    def __init__(self, zk: BoundedCalls, path: str, command_deadline: float = COMMAND_DEADLINE_S) -> None:
        self._zk = zk
        self._client = zk.client
        self._deadline = command_deadline
        self._path = path.rstrip("/")
        self._prefix = uuid.uuid4().hex + _CONTENDER_MARK
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._campaigning = False
        self._epoch = 0  # +1 at every SUSPENDED/LOST: an election decided before it is stale
        self._node: str | None = None
        self._identifier = ""
        self._leadership: Leadership | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # +1 at every campaign: the thread of an older one stops
        self._withdrawn = threading.Event()

    def campaign(
        self, identifier: str, on_elected: Callable[[], None], on_lost: Callable[[str], None]
    ) -> None:
        """See `LeaderElection.campaign`."""
        with self._lock:
            if self._campaigning:
                raise RuntimeError(f"already campaigning as {self._identifier!r}")
            self._campaigning = True
            self._generation += 1
            self._withdrawn.clear()
            self._identifier = identifier
            self._leadership = Leadership(identifier, on_elected, on_lost)
            self._thread = threading.Thread(
                target=self._run, args=(self._generation,), name=f"leader-election-{identifier}", daemon=True
            )
        self._client.add_listener(self._on_state)
        self._thread.start()

    def resign(self, timeout: float = 10.0) -> None:
        """See `LeaderElection.resign`."""
        with self._lock:
            if not self._campaigning:
                return
            self._campaigning = False
            leadership, thread = self._leadership, self._thread
            if leadership is not None:
                leadership.lost("resigned")
        self._client.remove_listener(self._on_state)
        self._wake.set()
        waited = thread is not None and thread is not threading.current_thread()
        if waited and not self._withdrawn.wait(timeout):
            log.warning(
                "%s could not leave the election within %s s; it keeps trying in the background",
                self._identifier,
                timeout,
            )
        if leadership is not None:
            leadership.close(timeout)

    @property
    def is_leader(self) -> bool:
        """See `LeaderElection.is_leader`."""
        leadership = self._leadership
        return leadership is not None and leadership.is_leader

    @property
    def leader_node(self) -> str | None:
        """The path of our election node while we lead (set before `on_elected` runs), else None: the
        store's fence checks it in every write (an ephemeral node is never modified: version 0)."""
        node = self._node
        return f"{self._path}/{node}" if node is not None and self.is_leader else None

    def verify_leadership(self, timeout: float = VERIFY_TIMEOUT_S) -> bool:
        """Ask ZooKeeper, now and with the current session, whether this contender leads: our node
        exists, is owned by this session and is the first contender. False on any doubt (not
        connected, no answer within `timeout` s in all, session gone): a leader checks this before it
        (re)subscribes to Mesos, as `is_leader` alone lags behind a session that expired while this
        process was paused (kazoo learns of it only when its connection wakes)."""
        leadership, node, session = self._leadership, self._node, self._client.client_id
        if leadership is None or not leadership.is_leader or node is None or session is None:
            return False
        if self._client.state != KazooState.CONNECTED:
            return False
        deadline = time.monotonic() + timeout
        try:  # one round trip: a session's requests are answered in order, the reads after the sync
            asked = (self._client.sync_async(self._path), self._client.exists_async(f"{self._path}/{node}"),
                     self._client.get_children_async(self._path))
            _, stat, children = (a.get(timeout=max(0.0, deadline - time.monotonic())) for a in asked)
        except Exception as exc:  # no answer is no leadership
            log.warning("%s could not confirm its leadership (%r)", self._identifier, exc)
            return False
        first = self._sorted_contenders(list(children))[:1]
        owned = stat is not None and stat.ephemeralOwner == session[0]
        return owned and first == [node] and leadership.is_leader

    def leader_identifier(self) -> str | None:
        """See `LeaderElection.leader_identifier`."""
        contenders = self.contenders(limit=1)
        return contenders[0] if contenders else None

    def contenders(self, limit: int | None = None) -> list[str]:
        """See `LeaderElection.contenders` (the first `limit` of them when given)."""

        def read() -> builtins.list[str]:
            identifiers = []
            for node in self._sorted_contenders(self._zk.get_children(self._path)):
                try:
                    identifiers.append(self._zk.get(f"{self._path}/{node}")[0].decode("utf-8"))
                except NoNodeError:
                    continue
                if limit is not None and len(identifiers) >= limit:
                    break
            return identifiers

        return call_with_retry(self._deadline, read)

    # -- the campaign thread -------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        """kazoo's state listener (connection thread): drop leadership first, then wake the campaign."""
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            suspended = state == KazooState.SUSPENDED
            reason = "ZooKeeper connection suspended" if suspended else "ZooKeeper session lost"
            with self._lock:
                self._epoch += 1
                if self._leadership is not None:
                    self._leadership.lost(reason)
        self._wake.set()

    def _current(self, generation: int) -> bool:
        return self._generation == generation

    def _run(self, generation: int) -> None:
        """Campaign until resigned, then withdraw until our node is gone; a newer campaign on this
        object takes over (and adopts our node) whenever it starts."""
        while True:
            with self._lock:
                if not self._current(generation):
                    return
                if not self._campaigning:
                    break
                epoch = self._epoch
            if self._client.state == KazooState.CONNECTED:
                try:
                    self._step(generation, epoch)
                except KazooException as exc:
                    log.info("leader election of %s: %s; will try again", self._identifier, exc)
                except Exception:
                    log.exception("leader election of %s failed a step; will try again", self._identifier)
            self._wake.wait(self.POLL_S)
            self._wake.clear()
        while self._current(generation) and not self._withdraw():
            if self._client.client_state == KeeperState.CLOSED:
                return  # the session is over: so is our node
            self._wake.wait(self.POLL_S)
            self._wake.clear()
        with self._lock:
            if self._current(generation):
                self._withdrawn.set()

    def _step(self, generation: int, epoch: int) -> None:
        """One look at the election: enter it if needed, lead if first, else watch the predecessor."""
        children = self._zk.get_children(self._path)
        node = self._node if self._node in children else self._own_node(children)
        if node is None:
            data = self._identifier.encode("utf-8")
            created = self._zk.create(f"{self._path}/{self._prefix}", data, ephemeral=True, sequence=True)
            self._node = created.rsplit("/", 1)[1]
            self._wake.set()  # look again with the new node in the list
            return
        self._node = node
        ordered = self._sorted_contenders(children)
        position = ordered.index(node)
        if position == 0:
            with self._lock:
                leadership = self._leadership
                if self._campaigning and self._current(generation) and self._epoch == epoch and leadership:
                    leadership.elected()
            return
        with self._lock:
            if self._leadership is not None:
                self._leadership.lost("another contender leads")
        predecessor = f"{self._path}/{ordered[position - 1]}"
        if self._zk.exists(predecessor, watch=self._on_watch) is None:
            self._wake.set()

    def _on_watch(self, event: object) -> None:
        self._wake.set()

    def _own_node(self, children: builtins.list[str]) -> str | None:
        """Our node when we lost track of it (a create whose answer was lost, an earlier campaign):
        the first with our prefix owned by this session; any other such node is deleted."""
        session_id = self._client.client_id[0] if self._client.client_id else None
        own = []
        for child in self._sorted_contenders(children):
            if child.startswith(self._prefix):
                stat = self._zk.exists(f"{self._path}/{child}")
                if stat is not None and stat.ephemeralOwner == session_id:
                    own.append(child)
        for extra in own[1:]:
            with contextlib.suppress(NoNodeError):
                self._zk.delete(f"{self._path}/{extra}")
        return own[0] if own else None

    def _withdraw(self) -> bool:
        """Delete our node; True once it is gone (or was never there), False to try again later."""
        if self._client.state != KazooState.CONNECTED:
            return False
        try:
            node = self._node if self._node is not None else self._own_node(self._zk.get_children(self._path))
            if node is not None:
                with contextlib.suppress(NoNodeError):
                    self._zk.delete(f"{self._path}/{node}")
            if self._own_node(self._zk.get_children(self._path)) is not None:
                return False
        except KazooException as exc:
            log.info("%s could not leave the election yet (%s); will try again", self._identifier, exc)
            return False
        self._node = None
        return True

    @staticmethod
    def _sorted_contenders(children: builtins.list[str]) -> builtins.list[str]:
        matches = [(m.group(1), child) for child in children if (m := _CONTENDER_RE.search(child))]
        return [child for _, child in sorted(matches)]


if TYPE_CHECKING:  # mypy checks that the class keeps the contract

    def _conforms(election: ZooKeeperLeaderElection) -> LeaderElection:
        return election
