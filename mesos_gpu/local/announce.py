"""Publish the local master in ZooKeeper as real Mesos masters do: an ephemeral sequential node
`<chroot>/json.info_<10-digit seq>` holding MasterInfo JSON; the lowest sequence is the leader
(what pymesos' `MasterDetector` reads: `min(children)`, then `address.ip`/`address.port`).

Example::

    announcer = MasterAnnouncer("zk://127.0.0.1:2181/mesos", master.master_info(), on_change)
    announcer.start()   # on_change(leader "ip:port" or None, is_self) from kazoo's thread
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.recipe.watchers import ChildrenWatch

log = logging.getLogger(__name__)

MASTER_INFO_JSON_LABEL = "json.info"
LeaderCallback = Callable[[str | None, bool], None]


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
    """One master's contender node plus a watch telling it who leads (see module docstring)."""

    def __init__(
        self, zk_url: str, master_info: dict[str, Any], on_change: LeaderCallback, timeout: float = 10.0
    ) -> None:
        self.hosts, self.chroot = split_zk_url(zk_url)
        self.master_info = master_info
        self.on_change = on_change
        self.timeout = timeout
        self.client: KazooClient | None = None
        self.node: str | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def _path(self, child: str) -> str:
        return self.chroot.rstrip("/") + "/" + child

    def start(self) -> MasterAnnouncer:
        client = KazooClient(hosts=self.hosts, timeout=self.timeout)
        client.start(timeout=self.timeout)
        self.client = client
        client.ensure_path(self.chroot)
        created = client.create(
            self._path(MASTER_INFO_JSON_LABEL + "_"),
            json.dumps(self.master_info).encode("utf-8"),
            ephemeral=True,
            sequence=True,
        )
        self.node = created.rsplit("/", 1)[-1]
        ChildrenWatch(client, self.chroot, self._children_changed)
        return self

    def update(self, master_info: dict[str, Any]) -> None:
        """Replace the announced MasterInfo (e.g. after a master restart with a new id)."""
        self.master_info = master_info
        if self.client is not None and self.node is not None:
            self.client.set(self._path(self.node), json.dumps(master_info).encode("utf-8"))

    def _children_changed(self, children: list[str]) -> bool:
        if self._stopped:
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
        if client is None or self._stopped:
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
        """Withdraw the node and close the session."""
        self._stopped = True
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self.node is not None:
                client.delete(self._path(self.node))
        except NoNodeError:
            pass
        finally:
            client.stop()
            client.close()
