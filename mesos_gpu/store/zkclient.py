"""The kazoo client of the ZooKeeper store and its retry policies: how a client starts, how long one
call waits, how long an operation retries, and when the store gives up with StoreUnavailable.

Example::

    client = start_client(parse_zk_url("zk://zk1:2181,zk2:2181/mesos-gpu"), timeout=15.0)
    calls = BoundedCalls(client, attempt_timeout(COMMAND_DEADLINE_S))
    data, stat = call_with_retry(COMMAND_DEADLINE_S, calls.get, "/mesos-gpu/prod/framework_id")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry, RetryFailedError

from mesos_gpu.core.wire import ZOOKEEPER_RECONNECT, ZooKeeperUrl
from mesos_gpu.store.base import NotLeader, StoreUnavailable

R = TypeVar("R")

SESSION_TIMEOUT_S = 10.0
"""ZooKeeper session timeout: how long a dead leader's election node survives it."""

COMMAND_DEADLINE_S = 15.0
"""How long a store operation keeps retrying a lost connection before StoreUnavailable."""

UNAVAILABLE = (
    RetryFailedError,
    ConnectionLoss,
    ConnectionClosedError,
    OperationTimeoutError,
    SessionExpiredError,
    KazooTimeoutError,
)
"""The kazoo errors that mean "ZooKeeper did not answer" once the retry policy gave up."""

DEFAULT_ROOT = "/mesos-gpu"
"""The store's base path when the URL names none (`zk://host:2181`)."""


def store_root(path: str, framework_name: str | None = None) -> str:
    """The store's root: a URL's `path` (DEFAULT_ROOT for "/"), plus `/<framework_name>` when given.

    >>> store_root("/mesos-gpu", "prod")
    '/mesos-gpu/prod'
    """
    base = path.rstrip("/") or DEFAULT_ROOT
    if framework_name is None:
        return base
    if not framework_name or "/" in framework_name:
        raise ValueError(f"framework name {framework_name!r} must be non-empty and contain no '/'")
    return base + "/" + framework_name


MULTI_OP_OVERHEAD = 64
"""Bytes a create in a multi-op transaction adds besides its data and path (headers, ACL, flags)."""


def packed(creates: list[tuple[int, str, bytes]], limit: int) -> list[list[tuple[int, str, bytes]]]:
    """`creates` (position, path, data), in order, in groups whose transaction stays under `limit` bytes
    (one ZooKeeper packet); a create over it alone is a group of its own."""
    groups: list[list[tuple[int, str, bytes]]] = []
    size = 0
    for create in creates:
        cost = len(create[1]) + len(create[2]) + MULTI_OP_OVERHEAD
        if not groups or size + cost > limit:
            groups.append([])
            size = 0
        groups[-1].append(create)
        size += cost
    return groups


_PLAIN_CALLS = {"create": "create", "set_data": "set", "delete": "delete"}
"""The `BoundedCalls` method of each transaction operation (the writes of an unfenced store)."""


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
    return KazooRetry(**ZOOKEEPER_RECONNECT)


_call_end = threading.local()
"""`end`: the monotonic time by which this thread's `call_with_retry` must be over (None outside one)."""


def time_left() -> float | None:
    """Seconds left of this thread's `call_with_retry` deadline; None outside one."""
    end: float | None = getattr(_call_end, "end", None)
    return None if end is None else end - time.monotonic()


def call_with_retry(deadline: float, func: Callable[..., R], *args: Any) -> R:
    """`func(*args)` under `command_retry(deadline)`; StoreUnavailable when the policy gives up.

    The call is over within `deadline` seconds, its last attempt included: each `BoundedCalls` wait
    made meanwhile on this thread is cut to what is left (a nested call keeps the outer end)."""
    outer: float | None = getattr(_call_end, "end", None)
    now = time.monotonic()
    end = now + max(0.0, deadline)
    if outer is not None:
        end = min(end, outer)
    deadline = max(0.0, end - now)
    _call_end.end = end
    try:
        return command_retry(deadline)(func, *args)
    except UNAVAILABLE as exc:
        raise StoreUnavailable(
            f"ZooKeeper did not answer within {deadline:g} s ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        _call_end.end = outer


def start_client(
    address: ZooKeeperUrl,
    *,
    timeout: float = 15.0,
    session_timeout: float = SESSION_TIMEOUT_S,
    command_deadline: float = COMMAND_DEADLINE_S,
) -> KazooClient:
    """A started kazoo client of `address`'s ensemble (digest auth when the URL has credentials),
    with `connection_retry()` and `command_retry(command_deadline)`. Raises StoreUnavailable when
    no server answers within `timeout` seconds."""
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
        stop_client(client)
        raise StoreUnavailable(f"no ZooKeeper server of {address.hosts} answered within {timeout} s") from exc
    return client


def stop_client(client: KazooClient) -> None:
    """End the client's session and release its connection thread."""
    client.stop()
    client.close()


class BoundedCalls:
    """kazoo calls that give up: each waits at most `timeout` s for a connection, then as long for
    its answer, and raises ConnectionLoss / OperationTimeoutError (both retried by `command_retry`).
    Within `call_with_retry` no wait goes past the call's deadline (`time_left`).

    kazoo's synchronous calls wait forever while the client is disconnected (a request made then
    sits in its queue until a server answers); these never do. A request that timed out may still
    be applied later: the store's writes recognise their own earlier attempts when they retry.

    Example::

        calls = BoundedCalls(client, timeout=5.0)
        children = command_retry()(calls.get_children, "/mesos-gpu/prod/jobs")
        calls.close()
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

    def _limit(self) -> float:
        """How long the next wait may last: `timeout`, or less when the call's deadline is nearer."""
        left = time_left()
        return self.timeout if left is None else max(0.0, min(self.timeout, left))

    def _ready(self) -> None:
        limit = self._limit()
        if not self._connected.wait(limit):
            raise ConnectionLoss(f"not connected to ZooKeeper for {limit:.3g} s")

    def wait(self, result: Any) -> Any:
        """The answer of a kazoo async result, or OperationTimeoutError after `timeout` s (or when the
        call's deadline comes first)."""
        limit = self._limit()
        try:
            return result.get(timeout=limit)
        except KazooTimeoutError as exc:
            raise OperationTimeoutError(f"no answer from ZooKeeper within {limit:.3g} s") from exc

    def seen_zxid(self) -> int:
        """The latest ZooKeeper transaction id this client has seen (0: none yet in this session): a write
        sent after this call commits with a higher one."""
        return int(getattr(self.client, "last_zxid", 0) or 0)

    def get(self, path: str) -> Any:
        """(data, stat) of `path`."""
        self._ready()
        return self.wait(self.client.get_async(path))

    def get_many(self, paths: list[str]) -> list[Any]:
        """(data, stat) of each of `paths`, None where it does not exist: pipelined reads, one round trip."""
        self._ready()
        pending = [self.client.get_async(path) for path in paths]
        found: list[Any] = []
        for result in pending:
            try:
                found.append(self.wait(result))
            except NoNodeError:
                found.append(None)
        return found

    def get_children(self, path: str) -> list[str]:
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

    def fenced_commit(self, node: str | None, operations: Callable[[Any], None]) -> list[Any]:
        """`commit(operations)` preceded by a check of the leader's election `node` (at version 0: an
        ephemeral election node is never modified), unless `node` is None; NotLeader when the check
        fails (this attempt wrote nothing: an earlier one whose answer was lost may have, which the
        store looks up, `zkrecover`). Returns the results of `operations` only."""

        def fenced(transaction: Any) -> None:
            if node is not None:
                transaction.check(node, 0)
            operations(transaction)

        results = self.commit(fenced)
        if node is None:
            return results
        if isinstance(results[0], (NoNodeError, BadVersionError)):
            raise NotLeader(f"not the leader any more: the election node {node} is gone; write refused")
        return results[1:]

    def fenced_write(self, node: str | None, operation: str, *args: Any) -> Any:
        """One write, the transaction's `operation` ("create", "set_data", "delete") on `args`: fenced
        by `node` as in `fenced_commit`, or the plain call when `node` is None. Returns its result (a
        path, a stat, None) or raises its error."""
        if node is None:
            return getattr(self, _PLAIN_CALLS[operation])(*args)
        (result,) = self.fenced_commit(node, lambda transaction: getattr(transaction, operation)(*args))
        if isinstance(result, Exception):
            raise result
        return result

    def commit(self, operations: Callable[[Any], None]) -> list[Any]:
        """Run `operations(transaction)`, commit it; one result (path, or exception) per operation."""
        self._ready()
        transaction = self.client.transaction()
        operations(transaction)
        return list(self.wait(transaction.commit_async()))
