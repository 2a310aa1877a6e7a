"""ZooKeeper `FrameworkStore` on kazoo: versioned job znodes, idempotent submits, leader election.

Layout under the framework's root (DESIGN section 6), e.g. `/mesos-gpu/<framework-name>`::

    framework_id                      the Mesos framework id (UTF-8)
    jobs/<job-id>                     the job as stable JSON; the znode version is the record version
    jobs/<job-id>/idempotency_key     the name of its idempotency node, when submitted with a key
    idempotency/<sha256(key)>         {"job_id": ..., "key": ...}
    leader/<uuid>__lock__<seq>        ephemeral-sequential contenders (kazoo Election compatible),
                                      data = the contender's identifier (its API host:port)
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState, KeeperState
from kazoo.retry import KazooRetry, RetryFailedError

from mesos_gpu.store.base import (
    MAX_RECORD_BYTES,
    Conflict,
    ConnectionState,
    CreateResult,
    FrameworkStore,
    InvalidRecord,
    JsonDict,
    LeaderElection,
    NotFound,
    StoreError,
    StoreUnavailable,
    Submitted,
    VersionConflict,
    Versioned,
    check_idempotency_key,
    check_job_id,
    decode_record,
    encode_record,
    idempotency_key_name,
)
from mesos_gpu.store.election import Leadership

log = logging.getLogger(__name__)

R = TypeVar("R")

DEFAULT_ROOT = "/mesos-gpu"
SESSION_TIMEOUT_S = 10.0
"""ZooKeeper session timeout: how long a dead leader's election node survives it."""

_UNAVAILABLE = (
    RetryFailedError,
    ConnectionLoss,
    ConnectionClosedError,
    OperationTimeoutError,
    SessionExpiredError,
    KazooTimeoutError,
)
_CONTENDER_MARK = "__lock__"  # kazoo's Lock/Election node name, so `Election(...).contenders()` reads ours
_CONTENDER_RE = re.compile(r"__lock__(-?\d{10})$")


COMMAND_DEADLINE_S = 15.0
"""How long a store operation keeps retrying a lost connection before StoreUnavailable."""


def command_retry(deadline: float = COMMAND_DEADLINE_S) -> KazooRetry:
    """The retry policy of every store operation: exponential backoff (50 ms doubling up to 2 s,
    with jitter) for up to `deadline` seconds, then StoreUnavailable. A session expiry is retried
    too (the client starts a new session)."""
    return KazooRetry(
        max_tries=-1, delay=0.05, backoff=2, max_delay=2.0, deadline=deadline, ignore_expire=True
    )


def attempt_timeout(deadline: float) -> float:
    """How long one attempt of an operation waits (for a connection, then for the answer)."""
    return max(0.5, min(5.0, deadline / 3))


def connection_retry() -> KazooRetry:
    """The reconnection policy of the client: retry forever, backing off up to 2 s (well inside
    the session timeout, so a short outage keeps the session and its leadership node)."""
    return KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=2.0)


@dataclass(frozen=True)
class ZooKeeperAddress:
    """A parsed `zk://[user:password@]host:port[,host:port]/path` URL."""

    hosts: str
    path: str
    auth: str | None = None

    def root(self, framework_name: str | None = None) -> str:
        """The store's root: the URL's path, plus `/<framework_name>` when given."""
        if framework_name is None:
            return self.path
        if not framework_name or "/" in framework_name:
            raise ValueError(f"framework name {framework_name!r} must be non-empty and contain no '/'")
        return self.path.rstrip("/") + "/" + framework_name


def parse_zk_url(url: str) -> ZooKeeperAddress:
    """Parse `zk://host:port[,host:port...][/path]` (the `zk://` is optional; path default /mesos-gpu).

    >>> parse_zk_url("zk://10.0.0.1:2181,10.0.0.2:2181/mesos-gpu/prod")
    ZooKeeperAddress(hosts='10.0.0.1:2181,10.0.0.2:2181', path='/mesos-gpu/prod', auth=None)
    """
    rest = url.strip()
    if rest.startswith("zk://"):
        rest = rest[len("zk://") :]
    elif "://" in rest:
        raise ValueError(f"not a ZooKeeper URL (expected zk://host:port/path): {url!r}")
    hosts, slash, path = rest.partition("/")
    auth = None
    if "@" in hosts:
        userinfo, _, hosts = hosts.rpartition("@")
        auth = unquote(userinfo)
    if not hosts:
        raise ValueError(f"ZooKeeper URL has no host: {url!r}")
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":")
        if not colon or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"ZooKeeper URL host {host!r} is not host:port in {url!r}")
    path = "/" + path.strip("/") if slash and path.strip("/") else DEFAULT_ROOT
    if any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise ValueError(f"ZooKeeper URL has a bad path {path!r}: {url!r}")
    return ZooKeeperAddress(hosts=hosts, path=path, auth=auth)


def connect(
    url: str,
    framework_name: str | None = None,
    *,
    timeout: float = 15.0,
    session_timeout: float = SESSION_TIMEOUT_S,
    command_deadline: float = COMMAND_DEADLINE_S,
) -> ZooKeeperStore:
    """Connect to ZooKeeper and open the store under the URL's path (plus `/<framework_name>`).

    `connect("zk://zk1:2181,zk2:2181/mesos-gpu", "prod")` keeps everything under
    `/mesos-gpu/prod`. Raises StoreUnavailable when no server answers within `timeout` seconds.
    `session_timeout`: how long ZooKeeper keeps the session (and leadership) of a silent client;
    `command_deadline`: how long each operation retries a lost connection.
    """
    address = parse_zk_url(url)
    client = KazooClient(
        hosts=address.hosts,
        timeout=session_timeout,
        connection_retry=connection_retry(),
        command_retry=command_retry(command_deadline),
        auth_data=[("digest", address.auth)] if address.auth else None,
    )
    try:
        client.start(timeout=timeout)
    except KazooTimeoutError as exc:
        client.stop()
        client.close()
        raise StoreUnavailable(f"no ZooKeeper server of {address.hosts} answered within {timeout} s") from exc
    try:
        return ZooKeeperStore(
            client, address.root(framework_name), owns_client=True, command_deadline=command_deadline
        )
    except BaseException:
        client.stop()
        client.close()
        raise


class BoundedCalls:
    """kazoo calls that give up: each waits at most `timeout` s for a connection, then as long for
    its answer, and raises ConnectionLoss / OperationTimeoutError (both retried by `command_retry`).

    kazoo's synchronous calls wait forever while the client is disconnected (a request made then
    sits in its queue until a server answers); these never do. A request that timed out may still
    be applied later: the store's writes recognise their own earlier attempts when they retry.
    """

    def __init__(self, client: KazooClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._connected = threading.Event()
        if client.state == KazooState.CONNECTED:
            self._connected.set()
        client.add_listener(self._on_state)

    def close(self) -> None:
        """Stop following the client's state."""
        self.client.remove_listener(self._on_state)
        self._connected.clear()

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()

    def _ready(self) -> None:
        if not self._connected.wait(self.timeout):
            raise ConnectionLoss(f"not connected to ZooKeeper for {self.timeout} s")

    def wait(self, result: Any) -> Any:
        """The answer of a kazoo async result, or OperationTimeoutError after `timeout` s."""
        try:
            return result.get(timeout=self.timeout)
        except KazooTimeoutError as exc:
            raise OperationTimeoutError(f"no answer from ZooKeeper within {self.timeout} s") from exc

    def get(self, path: str) -> Any:
        """(data, stat) of `path`."""
        self._ready()
        return self.wait(self.client.get_async(path))

    def get_children(self, path: str) -> builtins.list[str]:
        """The children's names of `path`."""
        self._ready()
        return list(self.wait(self.client.get_children_async(path)))

    def exists(self, path: str, watch: Callable[[Any], None] | None = None) -> Any:
        """The stat of `path` or None; `watch` fires once at its next change."""
        self._ready()
        return self.wait(self.client.exists_async(path, watch=watch))

    def create(self, path: str, value: bytes, ephemeral: bool = False, sequence: bool = False) -> str:
        """Create `path`; returns the real path (with the sequence suffix)."""
        self._ready()
        return str(self.wait(self.client.create_async(path, value, ephemeral=ephemeral, sequence=sequence)))

    def set(self, path: str, value: bytes, version: int = -1) -> Any:
        """Set `path`'s data if its version is `version` (-1: any); returns the new stat."""
        self._ready()
        return self.wait(self.client.set_async(path, value, version=version))

    def delete(self, path: str, version: int = -1) -> None:
        """Delete `path` if its version is `version` (-1: any)."""
        self._ready()
        self.wait(self.client.delete_async(path, version=version))

    def ensure_path(self, path: str) -> None:
        """Create `path` and its parents where missing."""
        self._ready()
        self.wait(self.client.ensure_path_async(path))

    def commit(self, operations: Callable[[Any], None]) -> builtins.list[Any]:
        """Run `operations(transaction)`, commit it; one result (path, or exception) per operation."""
        self._ready()
        transaction = self.client.transaction()
        operations(transaction)
        return list(self.wait(transaction.commit_async()))


#: Bytes a create in a multi-op transaction adds besides its data and path (headers, ACL, flags).
MULTI_OP_OVERHEAD = 64


class ZooKeeperStore:
    """A `FrameworkStore` in ZooKeeper under `root` (see the module docstring for the layout).

    Example::

        store = connect("zk://127.0.0.1:2181/mesos-gpu", "prod")
        record = store.create("job-1", {"name": "mnist"})
        store.compare_and_set("job-1", {"name": "mnist", "state": "RUNNING"}, record.version)
        store.close()

    Every operation retries connection loss with `command_retry()` and raises StoreUnavailable when
    it gives up. A retried write whose first attempt did succeed is recognised (same data at the
    next version, our own idempotency record) and reported as the success it was.
    """

    def __init__(
        self,
        client: KazooClient,
        root: str,
        *,
        owns_client: bool = False,
        command_deadline: float = COMMAND_DEADLINE_S,
    ) -> None:
        if not root.startswith("/") or root.rstrip("/") == "":
            raise ValueError(f"store root must be an absolute path below '/', got {root!r}")
        self._client = client
        self._owns_client = owns_client
        self._deadline = command_deadline
        self._zk = BoundedCalls(client, attempt_timeout(command_deadline))
        self.root = root.rstrip("/")
        self._jobs = self.root + "/jobs"
        self._keys = self.root + "/idempotency"
        self._leader = self.root + "/leader"
        self._framework_id = self.root + "/framework_id"
        self._elections: builtins.list[ZooKeeperLeaderElection] = []
        self._lock = threading.Lock()
        self._closed = False
        for path in (self._jobs, self._keys, self._leader):
            self._call(self._zk.ensure_path, path)

    @property
    def client(self) -> KazooClient:
        """The kazoo client (for tests and for the TF coordination nodes of the same session)."""
        return self._client

    # -- jobs ----------------------------------------------------------------------------------

    def create(self, job_id: str, data: JsonDict) -> Versioned[JsonDict]:
        """See `JobStore.create`."""
        return self._create_one(job_id, self._job_path(job_id), encode_record(data), maybe_ours=False)

    def create_many(self, items: Sequence[tuple[str, JsonDict]]) -> builtins.list[CreateResult]:
        """See `JobStore.create_many`: one multi-op transaction creates the valid items (several when
        their records would not fit one ZooKeeper packet together)."""
        results: builtins.list[CreateResult | None] = []
        chunks: builtins.list[builtins.list[tuple[int, str, bytes]]] = [[]]
        size = 0
        for job_id, data in items:
            try:
                path, encoded = self._job_path(job_id), encode_record(data)
            except StoreError as exc:
                results.append(exc)
                continue
            cost = len(encoded) + len(path) + MULTI_OP_OVERHEAD
            if chunks[-1] and size + cost > MAX_RECORD_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append((len(results), path, encoded))
            size += cost
            results.append(None)
        for chunk in chunks:
            if chunk:
                self._create_chunk(chunk, results)
        done = [result for result in results if result is not None]
        assert len(done) == len(items)
        return done

    def _create_chunk(self, chunk: builtins.list[tuple[int, str, bytes]],
                      results: builtins.list[CreateResult | None]) -> None:
        """ZooKeeper commits a transaction all or nothing: when it is refused (a job id taken), each
        item is created alone to find which one. A transaction whose answer was lost and that was
        retried counts the nodes it finds holding its own data as created by it."""
        attempts = 0

        def attempt() -> builtins.list[Any]:
            nonlocal attempts
            attempts += 1

            def operations(transaction: Any) -> None:
                for _, path, encoded in chunk:
                    transaction.create(path, encoded)

            return self._zk.commit(operations)

        try:
            committed = not any(isinstance(result, Exception) for result in self._call(attempt))
        except StoreError as exc:
            for position, _, _ in chunk:
                results[position] = exc
            return
        for position, path, encoded in chunk:
            job_id = path.rsplit("/", 1)[-1]
            if committed:
                results[position] = Versioned(job_id, decode_record(encoded), 0)
                continue
            try:
                results[position] = self._create_one(job_id, path, encoded, maybe_ours=attempts > 1)
            except StoreError as exc:
                results[position] = exc

    def _create_one(self, job_id: str, path: str, encoded: bytes, maybe_ours: bool) -> Versioned[JsonDict]:
        """One create; a node already there with exactly `encoded` counts as ours when `maybe_ours`
        (an earlier attempt whose answer was lost wrote it)."""
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                self._zk.create(path, encoded)
            except NodeExistsError:
                if (maybe_ours or attempts > 1) and self._zk.get(path)[0] == encoded:
                    return
                raise Conflict(f"job {job_id!r} already exists") from None

        self._call(attempt)
        return Versioned(job_id, decode_record(encoded), 0)

    def submit(self, job_id: str, data: JsonDict, idempotency_key: str | None) -> Submitted:
        """See `JobStore.submit`: one multi-op transaction creates the key node and the job."""
        if idempotency_key is None:
            return Submitted(self.create(job_id, data), created=True)
        path = self._job_path(job_id)
        encoded = encode_record(data)
        key_name = idempotency_key_name(check_idempotency_key(idempotency_key))
        key_path = f"{self._keys}/{key_name}"
        key_record = json.dumps({"job_id": job_id, "key": idempotency_key}, sort_keys=True).encode()

        for _ in range(5):
            attempts = 0

            def attempt() -> builtins.list[Any]:
                nonlocal attempts
                attempts += 1

                def operations(transaction: Any) -> None:
                    transaction.create(key_path, key_record)
                    transaction.create(path, encoded)
                    transaction.create(path + "/idempotency_key", key_name.encode())

                return self._zk.commit(operations)

            results = self._call(attempt)
            if not any(isinstance(result, Exception) for result in results):
                return Submitted(Versioned(job_id, decode_record(encoded), 0), created=True)
            if isinstance(results[0], NodeExistsError):
                existing = self.job_for_idempotency_key(idempotency_key)
                if existing is None:
                    continue  # the job of that key was deleted just now: the key is free again
                if existing == job_id and attempts > 1:
                    return Submitted(Versioned(job_id, decode_record(encoded), 0), created=True)
                try:
                    return Submitted(self.get(existing), created=False)
                except NotFound:
                    continue  # deleted between the two reads; try again
            if isinstance(results[1], NodeExistsError):
                raise Conflict(f"job {job_id!r} already exists")
            raise self._unexpected(results, f"submit of job {job_id!r}")
        raise NotFound(f"the job recorded for idempotency key {idempotency_key!r} keeps being deleted")

    def job_for_idempotency_key(self, idempotency_key: str) -> str | None:
        """See `JobStore.job_for_idempotency_key`."""
        key_path = f"{self._keys}/{idempotency_key_name(idempotency_key)}"
        try:
            raw, _ = self._call(self._zk.get, key_path)
        except NoNodeError:
            return None
        job_id = json.loads(raw.decode("utf-8"))["job_id"]
        return str(job_id)

    def get(self, job_id: str) -> Versioned[JsonDict]:
        """See `JobStore.get`."""
        path = self._job_path(job_id)
        try:
            raw, stat = self._call(self._zk.get, path)
        except NoNodeError:
            raise NotFound(f"job {job_id!r} does not exist") from None
        return Versioned(job_id, decode_record(raw), stat.version)

    def ids(self) -> builtins.list[str]:
        """See `JobStore.ids`."""
        return sorted(self._call(self._zk.get_children, self._jobs))

    def list(self) -> builtins.list[Versioned[JsonDict]]:
        """See `JobStore.list`: the records are read with pipelined asynchronous gets."""

        def read_all() -> builtins.list[Versioned[JsonDict]]:
            ids = sorted(self._zk.get_children(self._jobs))
            pending = [(job_id, self._client.get_async(f"{self._jobs}/{job_id}")) for job_id in ids]
            records = []
            for job_id, result in pending:
                try:
                    raw, stat = self._zk.wait(result)
                except NoNodeError:
                    continue
                records.append(Versioned(job_id, decode_record(raw), stat.version))
            return records

        return self._call(read_all)

    def compare_and_set(self, job_id: str, data: JsonDict, expected_version: int) -> Versioned[JsonDict]:
        """See `JobStore.compare_and_set` (ZooKeeper's conditional setData)."""
        path = self._job_path(job_id)
        encoded = encode_record(data)
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            try:
                return int(self._zk.set(path, encoded, version=expected_version).version)
            except NoNodeError:
                raise NotFound(f"job {job_id!r} does not exist") from None
            except BadVersionError:
                try:
                    raw, stat = self._zk.get(path)
                except NoNodeError:
                    raise NotFound(f"job {job_id!r} does not exist") from None
                if attempts > 1 and raw == encoded and stat.version == expected_version + 1:
                    return int(stat.version)  # our first attempt wrote it; its answer was lost
                raise VersionConflict(job_id, expected_version, stat.version) from None

        version = self._call(attempt)
        return Versioned(job_id, decode_record(encoded), version)

    def delete(self, job_id: str, expected_version: int | None) -> None:
        """See `JobStore.delete`: the job, its key marker and its idempotency node go in one transaction."""
        path = self._job_path(job_id)
        version = -1 if expected_version is None else expected_version
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                key_name = self._zk.get(path + "/idempotency_key")[0].decode()
            except NoNodeError:
                key_name = None
            if key_name is None:
                try:
                    self._zk.delete(path, version=version)
                    return
                except NoNodeError:
                    if attempts > 1:
                        return  # our first attempt deleted it; its answer was lost
                    raise NotFound(f"job {job_id!r} does not exist") from None
                except BadVersionError:
                    raise self._version_conflict(job_id, expected_version) from None
                except NotEmptyError:
                    raise Conflict(f"job {job_id!r} has child nodes this store did not write") from None

            def operations(transaction: Any) -> None:
                transaction.delete(path + "/idempotency_key")
                transaction.delete(f"{self._keys}/{key_name}")
                transaction.delete(path, version=version)

            results = self._zk.commit(operations)
            if not any(isinstance(result, Exception) for result in results):
                return
            if isinstance(results[2], BadVersionError):
                raise self._version_conflict(job_id, expected_version)
            if any(isinstance(result, NoNodeError) for result in results):
                if attempts > 1:
                    return
                raise NotFound(f"job {job_id!r} does not exist")
            raise self._unexpected(results, f"delete of job {job_id!r}")

        self._call(attempt)

    # -- framework id --------------------------------------------------------------------------

    def get_framework_id(self) -> str | None:
        """See `FrameworkIdStore.get_framework_id`."""
        try:
            raw, _ = self._call(self._zk.get, self._framework_id)
        except NoNodeError:
            return None
        return raw.decode("utf-8") or None

    def set_framework_id(self, value: str) -> None:
        """See `FrameworkIdStore.set_framework_id`."""
        if not isinstance(value, str) or not value:
            raise ValueError(f"framework id must be a non-empty string, got {value!r}")
        encoded = value.encode("utf-8")

        def attempt() -> None:
            try:
                self._zk.set(self._framework_id, encoded)
            except NoNodeError:
                try:
                    self._zk.create(self._framework_id, encoded)
                except NodeExistsError:
                    self._zk.set(self._framework_id, encoded)

        self._call(attempt)

    def clear_framework_id(self) -> None:
        """See `FrameworkIdStore.clear_framework_id`."""

        def attempt() -> None:
            with contextlib.suppress(NoNodeError):
                self._zk.delete(self._framework_id)

        self._call(attempt)

    # -- session -------------------------------------------------------------------------------

    def leader_election(self) -> ZooKeeperLeaderElection:
        """See `FrameworkStore.leader_election`: contenders under `<root>/leader`."""
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            election = ZooKeeperLeaderElection(self._zk, self._leader, self._deadline)
            self._elections.append(election)
            return election

    def add_connection_listener(self, listener: Callable[[ConnectionState], None]) -> None:
        """See `FrameworkStore.add_connection_listener` (kazoo's state listener, translated)."""

        def translate(state: str) -> None:
            try:
                listener(ConnectionState(state))
            except Exception:
                log.exception("ZooKeeper connection listener %r raised; ignored", listener)

        self._client.add_listener(translate)

    def close(self) -> None:
        """See `FrameworkStore.close`: resigns this store's contenders, then ends the session
        (and stops the client when this store started it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            elections, self._elections = self._elections, []
        for election in elections:
            election.resign()
        self._zk.close()
        if self._owns_client:
            self._client.stop()
            self._client.close()

    # -- helpers -------------------------------------------------------------------------------

    def _job_path(self, job_id: str) -> str:
        return f"{self._jobs}/{check_job_id(job_id)}"

    def _call(self, func: Callable[..., R], *args: Any) -> R:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            return command_retry(self._deadline)(func, *args)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"ZooKeeper did not answer ({type(exc).__name__}: {exc})") from exc

    def _version_conflict(self, job_id: str, expected_version: int | None) -> VersionConflict:
        stat = self._zk.exists(f"{self._jobs}/{job_id}")
        return VersionConflict(job_id, expected_version, None if stat is None else stat.version)

    @staticmethod
    def _unexpected(results: builtins.list[Any], what: str) -> Exception:
        errors = [type(r).__name__ for r in results if isinstance(r, Exception)]
        return InvalidRecord(f"ZooKeeper refused the {what}: {', '.join(errors)}")


class ZooKeeperLeaderElection:
    """Leader election with ephemeral-sequential nodes under `path` (see `LeaderElection`).

    The lowest sequence number leads; every other contender watches only its predecessor (no herd
    effect). Node names and data follow kazoo's Election recipe, so `Election(client, path)
    .contenders()` lists the same identifiers. Leadership is dropped the moment kazoo reports
    SUSPENDED or LOST, before any callback runs; after a reconnection the contender campaigns again.

    Example::

        election = store.leader_election()     # a ZooKeeperLeaderElection under <root>/leader
        election.campaign("10.0.0.5:8080", on_elected, on_lost)
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

        try:
            return command_retry(self._deadline)(read)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"ZooKeeper did not answer ({type(exc).__name__}: {exc})") from exc

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


if TYPE_CHECKING:  # mypy checks that the classes keep the contract

    def _conforms(store: ZooKeeperStore) -> tuple[FrameworkStore, LeaderElection]:
        return store, store.leader_election()
