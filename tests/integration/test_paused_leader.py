"""Issue 20 item 6: a leader paused (SIGSTOP) past its ZooKeeper session, woken after a standby took
over, must not SUBSCRIBE again. Before the fix its pymesos driver re-subscribed the moment the master
closed its stream, failing the new leader over (its stream closed, "Framework failed over"), which
re-subscribed in turn: a fight until kazoo told the old one it had lost. The old leader reaches
ZooKeeper through `SilentProxy`, so kazoo learns of the expiry only by its own read timeout (~2/3 of
the session) and the fight, if any, is certain to happen (with a direct connection it is a race)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import ZooKeeperStore
from tests.integration.conftest import wait_for
from tests.integration.test_failover import REPO, Scheduler, ha_store  # noqa: F401  (ha_store: a fixture)

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

SESSION_TIMEOUT = 4.0  # ZooKeeper's least (2 ticks of the fixture's server)
SUBSCRIBED = re.compile(r"registered as framework|re-registered with master")
JOB = {"name": "after", "command": "sleep 30", "cpus": 0.1, "mem": 32}


class SilentProxy:
    """A TCP relay to `target`. When the server ends a connection, the client's side stays open and
    silent (a dead network path), so the client learns of it only by its own timeouts."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._target)
            except OSError:
                return
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        """Relay until `source` ends; what the server can no longer take is dropped; never close."""
        alive = True
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if alive:
                try:
                    sink.sendall(data)
                except OSError:
                    alive = False

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def silent_zk(zk_hosts: str) -> Iterator[SilentProxy]:
    proxy = SilentProxy(zk_hosts.split(",", maxsplit=1)[0])
    yield proxy
    proxy.close()


class Contender(Scheduler):
    """`tests.integration.contender_proc` in its own process: submits through its stdin."""

    def __init__(self, master: str, zk_url: str, name: str, launcher_uri: str, log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file: IO[str] = log.open("w")
        args = [sys.executable, "-m", "tests.integration.contender_proc", master, zk_url, name, launcher_uri,
                str(SESSION_TIMEOUT)]
        self.process = subprocess.Popen(
            args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, text=True
        )
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self.lines: list[str] = []

    def submit(self, job: dict[str, object]) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(f"SUBMIT {json.dumps(job)}\n")
        self.process.stdin.flush()
        line, _ = self.wait_line("JOB ", 20)
        return line.split()[1]

    def log_text(self) -> str:
        return self.log.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        super().close()
        if self.process.stdin is not None:
            self.process.stdin.close()


def test_a_woken_paused_leader_does_not_resubscribe_and_the_new_leader_keeps_its_stream(
    tmp_path: Path, zk_hosts: str, zk_chroot: str, launcher_uri: str, *,
    ha_store: ZooKeeperStore, silent_zk: SilentProxy,  # noqa: F811
) -> None:
    zk_url = f"zk://{zk_hosts}{zk_chroot}"
    with LocalCluster(agents=1, gpus_per_agent=1, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
                      status_update_retry=1.0, allocation_interval=0.2) as cluster:
        old_zk_url = f"zk://{silent_zk.address}{zk_chroot}"
        old = Contender(cluster.master_address, old_zk_url, "a:1", launcher_uri, tmp_path / "a.log")
        new: Contender | None = None
        try:
            old.wait_line("LEADER", 30)
            new = Contender(cluster.master_address, zk_url, "b:2", launcher_uri, tmp_path / "b.log")
            wait_for(lambda: len(ha_store.leader_election().contenders()) == 2, 15, "no standby")
            old.process.send_signal(signal.SIGSTOP)
            new.wait_line("LEADER", 20)  # the old session expired and the standby subscribed
            new_log_before = len(new.log_text())
            old_log_before = len(old.log_text())
            old.process.send_signal(signal.SIGCONT)
            old.wait_line("LOST", 15)
            # The fight (if any) is over once the old one stopped leading: look at what happened.
            old_after = old.log_text()[old_log_before:]
            new_after = new.log_text()[new_log_before:]
            assert not SUBSCRIBED.findall(old_after), f"the old leader subscribed again:\n{old_after[-3000:]}"
            assert "Framework failed over" not in new_after, new_after[-3000:]
            assert "disconnected from the master" not in new_after, new_after[-3000:]
            # The new leader keeps acting: its ACCEPT launches a job.
            job_id = new.submit(JOB)
            wait_for(lambda: ha_store.get(job_id).data["state"] == "RUNNING", 20, "the job never ran")
            new_after = new.log_text()[new_log_before:]
            assert "driver call failed" not in new_after, new_after[-3000:]
            frameworks = cluster.state()["frameworks"]
            assert len(frameworks) == 1 and frameworks[0]["connected"], frameworks
        finally:
            old.close()
            if new is not None:
                new.close()
