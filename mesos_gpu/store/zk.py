"""The ZooKeeper `FrameworkStore` on kazoo: versioned job znodes, idempotent submits, the framework id.

Layout under the framework's root (DESIGN section 6), e.g. `/mesos-gpu/<framework-name>`::

    framework_id                      the Mesos framework id (UTF-8)
    jobs/<job-id>                     the job as stable JSON; the znode version is the record version
    jobs/<job-id>/idempotency_key     the name of its idempotency node, when submitted with a key
    idempotency/<sha256(key)>         {"job_id": ..., "key": ...}
    leader/<uuid>__lock__<seq>        the election's contenders (`zkelection`)

The client and its retry policies live in `zkclient`, the leader election in `zkelection`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError

from mesos_gpu.core.wire import parse_zk_url
from mesos_gpu.store import zkrecover
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
    NotLeader,
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
    item_error,
)
from mesos_gpu.store.zkclient import (
    COMMAND_DEADLINE_S,
    DEFAULT_ROOT,
    SESSION_TIMEOUT_S,
    BoundedCalls,
    attempt_timeout,
    call_with_retry,
    packed,
    start_client,
    stop_client,
    store_root,
)
from mesos_gpu.store.zkelection import ZooKeeperLeaderElection

__all__ = ["DEFAULT_ROOT", "ZooKeeperLeaderElection", "ZooKeeperStore", "connect", "store_root"]

log = logging.getLogger(__name__)

R = TypeVar("R")


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
    `/mesos-gpu/prod`. Raises StoreUnavailable when no server answers within `timeout` seconds,
    ValueError for a malformed URL (`mesos_gpu.core.wire.parse_zk_url`).
    `session_timeout`: how long ZooKeeper keeps the session (and leadership) of a silent client;
    `command_deadline`: how long each operation retries a lost connection.
    """
    address = parse_zk_url(url)
    root = store_root(address.path, framework_name)
    client = start_client(
        address, timeout=timeout, session_timeout=session_timeout, command_deadline=command_deadline
    )
    try:
        return ZooKeeperStore(client, root, owns_client=True, command_deadline=command_deadline)
    except BaseException:
        stop_client(client)
        raise


class ZooKeeperStore:
    """A `FrameworkStore` in ZooKeeper under `root` (see the module docstring for the layout).

    Example::

        store = connect("zk://127.0.0.1:2181/mesos-gpu", "prod")
        record = store.create("job-1", {"name": "mnist"})
        store.compare_and_set("job-1", {"name": "mnist", "state": "RUNNING"}, record.version)
        store.close()

    Every operation retries connection loss with `zkclient.command_retry()` and raises StoreUnavailable when
    it gives up, within `command_deadline` s (its last attempt included). A retried write whose first
    attempt did succeed is recognised (same data at the next version, our own idempotency record) and
    reported as the success it was; for creates and submits also when the retry is refused as NotLeader
    (`zkrecover`, within what is left of the write's deadline).
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
        self._fence: ZooKeeperLeaderElection | None = None
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
        path, encoded = self._job_path(job_id), encode_record(data)
        node = self._fence_node()
        return self._create_one(job_id, path, encoded, False, node, since=self._zk.seen_zxid())

    def create_many(self, items: Sequence[tuple[str, JsonDict]]) -> builtins.list[CreateResult]:
        """See `JobStore.create_many`: one multi-op transaction creates the valid items (several when
        their records would not fit one ZooKeeper packet together)."""
        try:
            node = self._fence_node()
        except NotLeader as exc:
            return [exc] * len(items)
        results: builtins.list[CreateResult | None] = []
        creates: builtins.list[tuple[int, str, bytes]] = []
        for job_id, data in items:
            try:
                creates.append((len(results), self._job_path(job_id), encode_record(data)))
                results.append(None)
            except Exception as exc:  # each item fails alone, whatever it raises
                results.append(item_error(job_id, exc))
        for chunk in packed(creates, MAX_RECORD_BYTES):
            self._create_chunk(chunk, results, node)
        done = [result for result in results if result is not None]
        assert len(done) == len(items)
        return done

    def _create_chunk(self, chunk: builtins.list[tuple[int, str, bytes]],
                      results: builtins.list[CreateResult | None], node: str | None) -> None:
        """ZooKeeper commits a transaction all or nothing: when it is refused (a job id taken) or
        fails otherwise than by an outage, each item is created alone to find which one. A transaction
        whose answer was lost and that was retried counts the nodes it finds holding its own data as
        created by it, also when the retry is refused as NotLeader (`zkrecover`: the look-up gets what
        is left of this transaction's deadline)."""
        attempts = 0
        since, started = self._zk.seen_zxid(), time.monotonic()

        def attempt() -> builtins.list[Any]:
            nonlocal attempts
            attempts += 1

            def operations(transaction: Any) -> None:
                for _, path, encoded in chunk:
                    transaction.create(path, encoded)

            return self._zk.fenced_commit(node, operations)

        try:
            committed = not any(isinstance(result, Exception) for result in self._call(attempt))
            maybe_ours = attempts > 1
        except StoreError as exc:
            answers: builtins.list[CreateResult] = [exc] * len(chunk)
            if isinstance(exc, NotLeader) and attempts > 1:  # the lost attempt may have committed
                entries = [(path.rsplit("/", 1)[-1], path, encoded) for _, path, encoded in chunk]
                answers = zkrecover.look_up_creates(self._zk, self._left(started), entries, exc, since)
            for (position, _, _), answer in zip(chunk, answers, strict=True):
                results[position] = answer
            return
        except Exception:  # it may have been applied: a node holding exactly our data is ours
            log.exception("a create_many transaction of %d job(s) failed; creating each alone", len(chunk))
            committed, maybe_ours = False, True
        for position, path, encoded in chunk:
            job_id = path.rsplit("/", 1)[-1]
            if committed:
                results[position] = Versioned(job_id, decode_record(encoded), 0)
                continue
            try:
                results[position] = self._create_one(job_id, path, encoded, maybe_ours, node, since=since)
            except Exception as exc:  # each item fails alone, whatever it raises
                results[position] = item_error(job_id, exc)

    def _create_one(
        self, job_id: str, path: str, encoded: bytes, maybe_ours: bool, node: str | None, *, since: int
    ) -> Versioned[JsonDict]:
        """One create (fenced by `node`); a node already there with exactly `encoded` counts as ours
        when `maybe_ours` (an earlier attempt whose answer was lost wrote it), also when refused (`since`:
        a zxid seen before the first of those attempts, `zkrecover.look_up_creates`)."""
        attempts = 0
        started = time.monotonic()

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            try:
                self._zk.fenced_write(node, "create", path, encoded)
            except NodeExistsError:
                if (maybe_ours or attempts > 1) and self._zk.get(path)[0] == encoded:
                    return
                raise Conflict(f"job {job_id!r} already exists") from None

        try:
            self._call(attempt)
        except NotLeader as refused:  # an earlier attempt may have committed: look
            if not (maybe_ours or attempts > 1):
                raise
            entry = (job_id, path, encoded)
            return zkrecover.look_up_create(self._zk, self._left(started), entry, refused, since)
        return Versioned(job_id, decode_record(encoded), 0)

    def submit(self, job_id: str, data: JsonDict, idempotency_key: str | None) -> Submitted:
        """See `JobStore.submit`: one multi-op transaction creates the key node and the job."""
        if idempotency_key is None:
            return Submitted(self.create(job_id, data), created=True)
        node = self._fence_node()
        path = self._job_path(job_id)
        encoded = encode_record(data)
        key_name = idempotency_key_name(check_idempotency_key(idempotency_key))
        key_path = f"{self._keys}/{key_name}"
        key_record = json.dumps({"job_id": job_id, "key": idempotency_key}, sort_keys=True).encode()

        for _ in range(5):
            attempts, started = 0, time.monotonic()

            def attempt() -> builtins.list[Any]:
                nonlocal attempts
                attempts += 1

                def operations(transaction: Any) -> None:
                    transaction.create(key_path, key_record)
                    transaction.create(path, encoded)
                    transaction.create(path + "/idempotency_key", key_name.encode())

                return self._zk.fenced_commit(node, operations)

            try:
                results = self._call(attempt)
            except NotLeader as refused:  # the lost attempt may have committed: our key node tells
                if attempts == 1:
                    raise
                ours = Versioned(job_id, decode_record(encoded), 0)
                return zkrecover.look_up_submit(self._zk, self._left(started), key_path, ours, refused)
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
            found = self._zk.get_many([f"{self._jobs}/{job_id}" for job_id in ids])
            return [Versioned(job_id, decode_record(node[0]), node[1].version)
                    for job_id, node in zip(ids, found, strict=True) if node is not None]

        return self._call(read_all)

    def compare_and_set(self, job_id: str, data: JsonDict, expected_version: int) -> Versioned[JsonDict]:
        """See `JobStore.compare_and_set` (ZooKeeper's conditional setData)."""
        path = self._job_path(job_id)
        encoded = encode_record(data)
        node = self._fence_node()
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            try:
                stat = self._zk.fenced_write(node, "set_data", path, encoded, expected_version)
                return int(stat.version)
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

    def compare_and_set_many(self, items: Sequence[tuple[str, JsonDict, int]]) -> builtins.list[int]:
        """See `JobStore.compare_and_set_many`: one fenced multi-op transaction of conditional setData per
        packet's worth of records (`packed`), one after another."""
        writes = [(position, self._job_path(job_id), encode_record(data))
                  for position, (job_id, data, _) in enumerate(items)]
        expected = [version for _, _, version in items]
        node = self._fence_node()
        versions: builtins.list[int] = []
        for chunk in packed(writes, MAX_RECORD_BYTES):
            versions += self._set_chunk(chunk, expected, node)
        return versions

    def _set_chunk(self, chunk: builtins.list[tuple[int, str, bytes]], expected: builtins.list[int],
                   node: str | None) -> builtins.list[int]:
        """One transaction of `compare_and_set_many`. A retry refused because its first attempt committed
        (its answer lost) finds every node holding its data at the version after the expected one: ours."""
        attempts = 0

        def operations(transaction: Any) -> None:
            for position, path, encoded in chunk:
                transaction.set_data(path, encoded, expected[position])

        def attempt() -> builtins.list[int]:
            nonlocal attempts
            attempts += 1
            results = self._zk.fenced_commit(node, operations)
            if not any(isinstance(result, Exception) for result in results):
                return [int(stat.version) for stat in results]
            if attempts > 1 and self._all_written(chunk, expected):
                return [expected[position] + 1 for position, _, _ in chunk]
            raise self._set_refused(chunk, expected, results)

        return self._call(attempt)

    def _all_written(self, chunk: builtins.list[tuple[int, str, bytes]],
                     expected: builtins.list[int]) -> bool:
        found = self._zk.get_many([path for _, path, _ in chunk])
        return all(node is not None and node[0] == encoded and node[1].version == expected[position] + 1
                   for (position, _, encoded), node in zip(chunk, found, strict=True))

    def _set_refused(self, chunk: builtins.list[tuple[int, str, bytes]], expected: builtins.list[int],
                     results: builtins.list[Any]) -> Exception:
        """The error of the first write ZooKeeper refused in `chunk` (the others roll back with it)."""
        for (position, path, _), result in zip(chunk, results, strict=True):
            job_id = path.rsplit("/", 1)[-1]
            if isinstance(result, NoNodeError):
                return NotFound(f"job {job_id!r} does not exist")
            if isinstance(result, BadVersionError):
                return self._version_conflict(job_id, expected[position])
        return self._unexpected(results, "writes")

    def delete(self, job_id: str, expected_version: int | None) -> None:
        """See `JobStore.delete`: the job, its key marker and its idempotency node go in one transaction."""
        path = self._job_path(job_id)
        version = -1 if expected_version is None else expected_version
        node = self._fence_node()
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
                    self._zk.fenced_write(node, "delete", path, version)
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

            results = self._zk.fenced_commit(node, operations)
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
        encoded, path, node = value.encode("utf-8"), self._framework_id, self._fence_node()

        def attempt() -> None:
            try:
                self._zk.fenced_write(node, "set_data", path, encoded)
            except NoNodeError:
                try:
                    self._zk.fenced_write(node, "create", path, encoded)
                except NodeExistsError:
                    self._zk.fenced_write(node, "set_data", path, encoded)

        self._call(attempt)

    def clear_framework_id(self) -> None:
        """See `FrameworkIdStore.clear_framework_id`."""

        path, node = self._framework_id, self._fence_node()

        def attempt() -> None:
            with contextlib.suppress(NoNodeError):
                self._zk.fenced_write(node, "delete", path)

        self._call(attempt)

    # -- settings records (`mesos_gpu.store.settings`: the tenants) ------------------------------

    def read_setting(self, name: str) -> Versioned[JsonDict] | None:
        """See `mesos_gpu.store.settings.SettingsStore.read_setting`: the node `<root>/settings/<name>`."""
        try:
            raw, stat = self._call(self._zk.get, f"{self.root}/settings/{check_job_id(name)}")
        except NoNodeError:
            return None
        return Versioned(name, decode_record(raw), stat.version)

    def write_setting(self, name: str, data: JsonDict) -> Versioned[JsonDict]:
        """See `mesos_gpu.store.settings.SettingsStore.write_setting` (fenced, like every write)."""
        path, encoded = f"{self.root}/settings/{check_job_id(name)}", encode_record(data)
        node = self._fence_node()

        def attempt() -> int:
            self._zk.ensure_path(f"{self.root}/settings")
            try:
                return int(self._zk.fenced_write(node, "set_data", path, encoded, -1).version)
            except NoNodeError:
                try:
                    self._zk.fenced_write(node, "create", path, encoded)
                    return 0
                except NodeExistsError:
                    return int(self._zk.fenced_write(node, "set_data", path, encoded, -1).version)

        return Versioned(name, decode_record(encoded), self._call(attempt))

    def delete_setting(self, name: str) -> bool:
        """See `mesos_gpu.store.settings.SettingsStore.delete_setting` (fenced)."""
        path, node = f"{self.root}/settings/{check_job_id(name)}", self._fence_node()

        def attempt() -> bool:
            try:
                self._zk.fenced_write(node, "delete", path, -1)
                return True
            except NoNodeError:
                return False

        return self._call(attempt)

    # -- session -------------------------------------------------------------------------------

    def leader_election(self) -> ZooKeeperLeaderElection:
        """See `FrameworkStore.leader_election`: contenders under `<root>/leader`."""
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            election = ZooKeeperLeaderElection(self._zk, self._leader, self._deadline)
            self._elections.append(election)
            return election

    def fence(self, election: LeaderElection) -> None:
        """See `FrameworkStore.fence`: each write checks `election.leader_node` in its transaction."""
        if not isinstance(election, ZooKeeperLeaderElection) or election not in self._elections:
            raise ValueError("a ZooKeeperStore is fenced only by an election of its own")
        self._fence = election

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
            stop_client(self._client)

    # -- helpers -------------------------------------------------------------------------------

    def _job_path(self, job_id: str) -> str:
        return f"{self._jobs}/{check_job_id(job_id)}"

    def _fence_node(self) -> str | None:
        """The election node a write must find (None: not fenced); NotLeader when we do not lead now."""
        node = None if self._fence is None else self._fence.leader_node
        if self._fence is not None and node is None:
            raise NotLeader()
        return node

    def _left(self, started: float) -> float:
        """What is left of the command deadline of an operation that started at `started` (monotonic)."""
        return max(0.0, self._deadline - (time.monotonic() - started))

    def _call(self, func: Callable[..., R], *args: Any) -> R:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        return call_with_retry(self._deadline, func, *args)

    def _version_conflict(self, job_id: str, expected_version: int | None) -> VersionConflict:
        stat = self._zk.exists(f"{self._jobs}/{job_id}")
        return VersionConflict(job_id, expected_version, None if stat is None else stat.version)

    @staticmethod
    def _unexpected(results: builtins.list[Any], what: str) -> Exception:
        errors = [type(r).__name__ for r in results if isinstance(r, Exception)]
        return InvalidRecord(f"ZooKeeper refused the {what}: {', '.join(errors)}")


if TYPE_CHECKING:  # mypy checks that the class keeps the contract

    def _conforms(store: ZooKeeperStore) -> FrameworkStore:
        return store
