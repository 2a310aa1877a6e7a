"""Publish the local master in ZooKeeper as real Mesos masters do: an ephemeral sequential node
`<chroot>/json.info_<10-digit seq>` holding MasterInfo JSON; the lowest sequence is the leader
(what pymesos' `MasterDetector` reads: `min(children)`, then `address.ip`/`address.port`).

The node lives as long as the ZooKeeper session. When the session expires (an outage longer than
the session timeout) ZooKeeper deletes the node; once kazoo has a new session the announcer creates it
again with the same MasterInfo, as a Mesos master contender contends again, and reports who leads
then. The client reconnects with a bounded backoff (kazoo's default grows to an hour).

Example::

    announcer = MasterAnnouncer("zk://127.0.0.1:2181/mesos", master.master_info(), on_change)
    announcer.start()   # on_change(leader "ip:port" or None, is_self) from kazoo's threads
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError
from kazoo.protocol.states import KazooState
from kazoo.recipe.watchers import ChildrenWatch
from kazoo.retry import KazooRetry

from mesos_gpu.core.wire import ZOOKEEPER_RECONNECT

log = logging.getLogger(__name__)

MASTER_INFO_JSON_LABEL = "json.info"
LeaderCallback = Callable[[str | None, bool], None]

RETRY_DELAY_S = 0.5
"""How long the announcer waits before it tries again to announce over a live connection."""


def connection_retry() -> KazooRetry:
    """The client's reconnection policy: retry forever, backing off up to 2 s, well inside the
    session timeout, so an outage keeps the session and its node whenever it can be kept."""
    return KazooRetry(**ZOOKEEPER_RECONNECT)


def split_zk_url(url: str) -> tuple[str, str]:
    """`zk://h1:2181,h2:2181/mesos` -> ("h1:2181,h2:2181", "/mesos")."""
    rest = url
    for scheme in ("zk://", "zoo://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
    hosts, slash, path = rest.partition("/")
    chroot = "/" + path.strip("/") if slash and path.strip("/") else "/"
    if not hosts:
        raise ValueError(f"no ZooKeeper hosts in {url!r}")
    return hosts, chroot


def address_of(info: dict[str, Any]) -> str | None:
    """`ip:port` from MasterInfo JSON (the fields pymesos reads), or None."""
    address = info.get("address")
    if not isinstance(address, dict) or "port" not in address:
        return None
    host = address.get("ip") or address.get("hostname")
    return f"{host}:{int(address['port'])}" if host else None


class MasterAnnouncer:
    """One master's contender node plus a watch telling it who leads (see module docstring).

    kazoo's connection thread calls the state listener, which must not block: it only wakes the
    announcer's own thread, which does the ZooKeeper work (is the node of this session there? if
    not, create it) whenever a connection is (re)established."""

    def __init__(
        self, zk_url: str, master_info: dict[str, Any], on_change: LeaderCallback, timeout: float = 10.0
    ) -> None:
        self.hosts, self.chroot = split_zk_url(zk_url)
        self.master_info = master_info
        self.on_change = on_change
        self.timeout = timeout
        self.client: KazooClient | None = None
        self.node: str | None = None
        self._lock = threading.Lock()  # one verdict reported at a time
        self._announce_lock = threading.Lock()  # one writer of the node at a time
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    def _path(self, child: str) -> str:
        return self.chroot.rstrip("/") + "/" + child

    def start(self) -> MasterAnnouncer:
        client = KazooClient(hosts=self.hosts, timeout=self.timeout, connection_retry=connection_retry())
        client.start(timeout=self.timeout)
        self.client = client
        client.add_listener(self._on_state)
        self._announce()
        ChildrenWatch(client, self.chroot, self._children_changed)
        self._keeper = threading.Thread(target=self._keep_announced, name="mesos-gpu-announce", daemon=True)
        self._keeper.start()
        return self

    def update(self, master_info: dict[str, Any]) -> None:
        """Replace the announced MasterInfo (e.g. after a master restart with a new id)."""
        with self._announce_lock:
            self.master_info = master_info
            client, node = self.client, self.node
            if client is None or node is None:
                return
            try:
                self._wait(client.set_async(self._path(node), json.dumps(master_info).encode("utf-8")))
                return
            except Exception as exc:  # the node went with the session, or ZooKeeper is unreachable
                log.warning("could not update the announced MasterInfo (%s); announcing again", exc)
        self._wake.set()

    # ------------------------------------------------------------------ staying announced
    def _on_state(self, state: str) -> None:
        """kazoo's session listener (its connection thread): never blocks, never calls ZooKeeper."""
        if state == KazooState.LOST:
            log.warning("the ZooKeeper session of the master announcement %s ended", self.node)
        elif state == KazooState.CONNECTED and not self._stopping.is_set():
            self._wake.set()

    def _keep_announced(self) -> None:
        """The announcer's thread: after each (re)connection, make sure this session's node exists
        and, when the node is new, report who leads now."""
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                if self._announce():
                    self._report()
            except Exception as exc:  # ZooKeeper went away again, or answered too late
                if self._stopping.is_set():
                    return
                log.warning("could not announce the master under %s: %s", self.chroot, exc)
                client = self.client
                if client is not None and client.connected:  # else the next CONNECTED wakes us
                    if self._stopping.wait(RETRY_DELAY_S):
                        return
                    self._wake.set()

    def _announce(self) -> bool:
        """Create this session's contender node unless it exists (its data made current if it
        does); True when `self.node` changed. A create whose answer was lost is found, not doubled."""
        with self._announce_lock:
            client = self.client
            if client is None or self._stopping.is_set():
                return False
            payload = json.dumps(self.master_info).encode("utf-8")
            node = self._own_node(client)
            if node is None:
                self._wait(client.ensure_path_async(self.chroot))
                created = self._wait(
                    client.create_async(
                        self._path(MASTER_INFO_JSON_LABEL + "_"), payload, ephemeral=True, sequence=True
                    )
                )
                node = str(created).rsplit("/", 1)[-1]
                log.info("announced the master in ZooKeeper as %s", created)
            else:
                data, _ = self._wait(client.get_async(self._path(node)))
                if data != payload:
                    self._wait(client.set_async(self._path(node), payload))
            changed = node != self.node
            self.node = node
            return changed

    def _own_node(self, client: KazooClient) -> str | None:
        """The lowest contender node owned by the client's current session, if any."""
        session = client.client_id
        if session is None:
            raise ConnectionLoss("no ZooKeeper session")
        try:
            children = self._wait(client.get_children_async(self.chroot))
        except NoNodeError:
            return None
        for child in sorted(c for c in children if c.startswith(MASTER_INFO_JSON_LABEL + "_")):
            stat = self._wait(client.exists_async(self._path(child)))
            if stat is not None and stat.ephemeralOwner == session[0]:
                return str(child)
        return None

    def _report(self) -> None:
        """Tell `on_change` who leads now (the watch may have fired before `self.node` was set)."""
        client = self.client
        if client is None:
            return
        children = list(self._wait(client.get_children_async(self.chroot)))
        with self._lock:
            if not self._stopping.is_set():
                self.on_change(*self._verdict(children))

    def _wait(self, result: Any) -> Any:
        """The answer of a kazoo async call, waiting at most `timeout` seconds for it."""
        return result.get(timeout=self.timeout)

    # ------------------------------------------------------------------ who leads
    def _children_changed(self, children: list[str]) -> bool:
        if self._stopping.is_set():
            return False
        with self._lock:
            self.on_change(*self._verdict(children))
        return True

    def _verdict(self, children: list[str], timeout: float | None = None) -> tuple[str | None, bool]:
        """(leader "ip:port" or None, whether this master leads) for the contenders in `children`."""
        contenders = sorted(c for c in children if c.startswith(MASTER_INFO_JSON_LABEL + "_"))
        if not contenders:
            return None, False
        if contenders[0] == self.node:
            return None, True
        return self._leader_address(contenders[0], timeout), False

    def probe(self, timeout: float = 1.0) -> tuple[str | None, bool] | None:
        """Who leads now, read from ZooKeeper at once (None if it cannot be read in `timeout`).

        The watch tells the same, a moment later: a standby asks before it redirects a framework, so
        a framework that saw the leader's node vanish first is not sent back to the old leader."""
        client = self.client
        if client is None or self._stopping.is_set():
            return None
        try:
            children = client.get_children_async(self.chroot).get(timeout=timeout)
            return self._verdict(list(children), timeout)
        except Exception as exc:  # unreachable ZooKeeper, timeout: keep the watch's view
            log.warning("could not read the master contenders under %s: %s", self.chroot, exc)
            return None

    def _leader_address(self, child: str, timeout: float | None = None) -> str | None:
        assert self.client is not None
        try:
            data, _ = self.client.get_async(self._path(child)).get(timeout=timeout or self.timeout)
            return address_of(json.loads(data.decode("utf-8")))
        except (NoNodeError, ValueError, UnicodeDecodeError):
            log.warning("could not read leader node %s", child)
            return None

    def stop(self) -> None:
        """Withdraw the node, close the session and end the announcer's thread."""
        self._stopping.set()
        self._wake.set()
        client, self.client = self.client, None
        if client is not None:
            try:
                if self.node is not None:
                    self._wait(client.delete_async(self._path(self.node)))
            except NoNodeError:
                pass
            except Exception as exc:  # unreachable: the node goes with the session closed below
                log.warning("could not withdraw the master announcement %s: %s", self.node, exc)
            finally:
                client.stop()
                client.close()
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(self.timeout)
