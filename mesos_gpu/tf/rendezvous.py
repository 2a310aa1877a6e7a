"""The ZooKeeper barrier of a TF job: each member registers `host:port`, then waits for all the others.

Watch-based (exists and data watches on the member nodes wake the waiter; nothing polls). A barrier
that times out says which members are missing. Runs inside the task (in the launcher bundle): stdlib
+ kazoo only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.interfaces import IAsyncResult
from kazoo.protocol.states import WatchedEvent
from kazoo.retry import KazooRetry

from mesos_gpu.core.tfconfig import (
    ClusterError,
    Member,
    cluster_path,
    cluster_record,
    expected_members,
    job_path,
    member_path,
    members_path,
    missing_members,
    parse_cluster_record,
    timeout_message,
)

log = logging.getLogger(__name__)

_TRANSIENT = (ConnectionLoss, SessionExpiredError)


def clear_job(client: KazooClient, job_id: str, chroot: str = "", timeout: float = 5.0) -> None:
    """Delete a TF job's rendezvous nodes (`<chroot>/tf/<job>`: its members and cluster), if any.

    The scheduler calls it on its event thread, so it is bounded: the deletes of one level go out
    together (one round trip, not one per member), and the whole takes at most `timeout` seconds
    (kazoo's timeout error otherwise; a disconnected client does not fail fast by itself)."""
    deadline = time.monotonic() + timeout

    def wait(result: IAsyncResult) -> object:
        return result.get(timeout=max(0.001, deadline - time.monotonic()))

    root = job_path(job_id, chroot)
    try:
        children = wait(client.get_children_async(root))
    except NoNodeError:
        return
    assert isinstance(children, list)
    branches = [f"{root}/{child}" for child in children]
    listings = [(branch, client.get_children_async(branch)) for branch in branches]
    leaves: list[str] = []
    for branch, listing in listings:
        with contextlib.suppress(NoNodeError):
            names = wait(listing)
            assert isinstance(names, list)
            leaves.extend(f"{branch}/{name}" for name in names)
    for level in (leaves, branches, [root]):
        for deletion in [client.delete_async(path) for path in level]:
            with contextlib.suppress(NoNodeError):
                wait(deletion)


class RendezvousTimeoutError(Exception):
    """Not every member registered in time; `missing` names those that did not."""

    def __init__(self, timeout: float, missing: list[Member]) -> None:
        super().__init__(timeout_message(timeout, missing))
        self.timeout = timeout
        self.missing = missing


class Rendezvous:
    """One member's side of a TF job's barrier in ZooKeeper.

    Example::

        client = KazooClient(hosts="127.0.0.1:2181")
        client.start()
        rendezvous = Rendezvous(client, "job-1", Member("worker", 1), "10.0.0.5:31000",
                                {"chief": 1, "worker": 2}, chroot="/mesos-gpu/fw")
        rendezvous.register()                     # ephemeral /mesos-gpu/fw/tf/job-1/members/worker-1
        addresses = rendezvous.wait(timeout=60)   # {Member: "host:port"}, or RendezvousTimeoutError
        ...                                       # keep `client` open while the member runs
        rendezvous.leave()

    A node left by an earlier run of the same member (whose session has not expired yet) is replaced.
    After a session expiry the member registers again as soon as the client reconnects.
    """

    def __init__(
        self,
        client: KazooClient,
        job_id: str,
        member: Member,
        address: str,
        counts: Mapping[str, int],
        *,
        chroot: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self.address = address
        self.expected = expected_members(counts)
        if member not in self.expected:
            raise ClusterError(f"{member} is not a member of a job with {dict(counts)}")
        self.replaced_stale_node = False
        self._client = client
        self._members_path = members_path(job_id, chroot)
        self._paths = {m: member_path(job_id, m, chroot) for m in self.expected}
        self._path = self._paths[member]
        self._members_by_path = {path: m for m, path in self._paths.items()}
        self._cluster_path = cluster_path(job_id, chroot)
        self._clock = clock
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._cache: dict[Member, tuple[str, int]] = {}  # address and owner session of each member read
        self._dirty: set[Member] = set(self.expected)  # members to (re)read: a watch fired, or never read
        self._session: int | None = None  # the session that owns this member's node
        self._published = threading.Event()
        self._published.set()
        self._publish_pending: tuple[dict[Member, str], dict[Member, int]] | None = None
        self._checks = 0
        self._lost = False
        self._left = False
        client.add_listener(self._on_state)

    # -- registration -------------------------------------------------------------------------------

    def register(self, deadline_s: float = 60.0) -> None:
        """Create this member's ephemeral node (retrying through connection loss for `deadline_s`)."""
        retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=1.0, deadline=deadline_s)
        retry(self._register_once)

    def _register_once(self) -> None:
        client = self._client
        data = self.address.encode("utf-8")
        while True:
            try:
                client.create(self._path, data, ephemeral=True)
                break
            except NoNodeError:
                client.ensure_path(self._members_path)
                continue
            except NodeExistsError:
                pass
            try:
                current, stat = client.get(self._path)
            except NoNodeError:
                continue
            if stat.ephemeralOwner == client.client_id[0]:
                if current != data:  # ours already (a retried create that did succeed)
                    client.set(self._path, data, version=stat.version)
                break
            # Left by an earlier run of this member whose session is still open: replace it.
            try:
                client.delete(self._path, version=stat.version)
                self.replaced_stale_node = True
                log.info("replaced the stale node %s (session 0x%x)", self._path, stat.ephemeralOwner)
            except (NoNodeError, BadVersionError):
                pass
        self._session = client.client_id[0]

    def _on_state(self, state: str) -> None:
        # A kazoo listener: runs on the connection thread, must not block.
        if state == KazooState.LOST:
            self._lost = True
        elif state == KazooState.CONNECTED:
            with self._lock:
                self._dirty.update(self.expected)  # an expired session's watches are gone: read all
            if self._lost and not self._left:
                self._lost = False
                self._client.handler.spawn(self._register_again)
        self._wake.set()

    def _register_again(self) -> None:
        try:
            self.register()
            log.warning("ZooKeeper session expired; %s registered again as %s", self.member, self.address)
        except Exception:
            log.exception("could not register %s again after a session expiry", self.member)
        self._wake.set()

    def leave(self) -> None:
        """Delete this member's node (it would vanish with the session anyway, only later)."""
        self._left = True
        self._client.remove_listener(self._on_state)
        if self._publish_pending is not None:
            self._publish(*self._publish_pending)
        self.flush()
        try:
            stat = self._client.exists(self._path)
            if stat is not None and stat.ephemeralOwner == self._client.client_id[0]:
                self._client.delete(self._path, version=stat.version)
        except (NoNodeError, BadVersionError, *_TRANSIENT):
            pass

    # -- the barrier --------------------------------------------------------------------------------

    def wait(self, timeout: float) -> dict[Member, str]:
        """Block until every member is registered; return each member's address.

        Raises `RendezvousTimeoutError` naming the missing members after `timeout` seconds.
        """
        if self._session is None:
            raise RuntimeError("register() first")
        deadline = self._clock() + timeout
        missing = list(self.expected)
        while True:
            self._wake.clear()
            try:
                complete = self._check()
            except _TRANSIENT:
                complete = None  # the listener wakes us when the connection is back
            else:
                if isinstance(complete, dict):
                    return complete
                missing = complete if complete is not None else missing
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RendezvousTimeoutError(timeout, missing)
            self._wake.wait(remaining)

    def _check(self) -> dict[Member, str] | list[Member] | None:
        """The addresses when the cluster is complete, else the members still missing.

        Every member is either cached (read, with a data watch on its node) or absent (with an exists
        watch on its path), or marked dirty by a watch that fired: only dirty members are read again.
        So the arrival of the last member costs each waiter one read, and nothing polls.
        """
        client = self._client
        self._checks += 1
        first_check = self._checks == 1
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        cached_before = set(self._cache)
        for member in dirty:
            self._cache.pop(member, None)
        try:
            watch = self._on_member_event
            reads = [(m, client.get_async(self._paths[m], watch=watch)) for m in sorted(dirty)]
            absent = []
            for member, result in reads:
                try:
                    data, stat = result.get()
                except NoNodeError:
                    absent.append(member)
                    continue
                self._cache[member] = (data.decode("utf-8"), stat.ephemeralOwner)
            watches = [(m, client.exists_async(self._paths[m], watch=watch)) for m in absent]
            for member, result in watches:
                if result.get() is not None:  # created since the read: read it on the next round
                    self._mark_dirty(member)
        except BaseException:
            self._mark_dirty(*dirty)
            raise
        missing = missing_members(self.expected, self._cache)
        if missing:
            # A member that left may have completed the cluster with us before we looked.
            departed = bool(cached_before & set(absent))
            completed = self._completed_with_me() if first_check or departed else None
            return completed or missing
        addresses = {m: self._cache[m][0] for m in self.expected}
        owners = {m: self._cache[m][1] for m in self.expected}
        if first_check:
            self._publish(addresses, owners)  # this member completed the cluster: it tells the others
        else:
            self._publish_pending = (addresses, owners)  # written by leave(), if still needed then
        return addresses

    def _mark_dirty(self, *members: Member) -> None:
        with self._lock:
            self._dirty.update(members)
        self._wake.set()

    def _on_member_event(self, event: WatchedEvent) -> None:
        # A member node appeared, changed or went away: read it again on the waiter's thread.
        member = self._members_by_path.get(event.path)
        if member is not None:
            self._mark_dirty(member)

    def _completed_with_me(self) -> dict[Member, str] | None:
        """The cluster a member published after seeing every member, *this* registration included.

        Covers a member that completed and left before this one saw the complete set: it wrote the
        cluster node before its own node went away (see `leave`), and its going woke us.
        """
        try:
            data, _ = self._client.get(self._cluster_path)
            addresses, owners = parse_cluster_record(data)
        except (NoNodeError, ClusterError):
            return None
        if owners.get(self.member) != self._session or set(addresses) != set(self.expected):
            return None
        return addresses

    def _publish(self, addresses: dict[Member, str], owners: dict[Member, int]) -> None:
        """Write the cluster node (unless it already says the same), without waiting for the answers.

        A session's requests are applied in order, and `leave()` waits for this chain to finish, so
        the record is in place before this member's node can go away.
        """
        data = cluster_record(addresses, owners)
        client, path = self._client, self._cluster_path
        done = self._published = threading.Event()
        self._publish_pending = None

        def after_create(result: IAsyncResult) -> None:
            try:
                result.get()
            except NodeExistsError:
                client.get_async(path).rawlink(after_get)
                return
            except Exception:
                log.warning("could not create %s", path, exc_info=True)
            done.set()

        def after_get(result: IAsyncResult) -> None:
            try:
                current, _ = result.get()
            except NoNodeError:
                client.create_async(path, data).rawlink(after_create)
                return
            except Exception:
                log.warning("could not read %s", path, exc_info=True)
                done.set()
                return
            if current == data:
                done.set()
            else:
                client.set_async(path, data).rawlink(lambda _: done.set())

        client.create_async(path, data).rawlink(after_create)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the cluster node this member writes is written; False if that took too long."""
        return self._published.wait(timeout)
