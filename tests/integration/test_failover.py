"""HA: the leading scheduler process is killed with SIGKILL while a job runs; a standby takes over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import ZooKeeperStore, connect
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


class Scheduler:
    """`tests.integration.scheduler_proc` in its own process."""

    def __init__(self, master: str, zk_url: str, name: str, launcher_uri: str, log: Path, *,
                 job: dict[str, Any] | None = None) -> None:
        self.name = name
        self.log = log
        self._log_file: IO[str] = log.open("w")
        args = [sys.executable, "-m", "tests.integration.scheduler_proc", master, zk_url, name, launcher_uri]
        if job is not None:
            args.append(json.dumps(job))
        self.process = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=self._log_file, text=True
        )
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self.lines: list[str] = []

    def wait_line(self, prefix: str, timeout: float) -> tuple[str, float]:
        assert self.process.stdout is not None
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            for line in self.process.stdout.readlines():
                self.lines.append(line.strip())
            for line in self.lines:
                if line.startswith(prefix):
                    return line, time.monotonic() - start
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        tail = self.log.read_text()[-3000:]
        raise AssertionError(f"{self.name}: no {prefix!r} within {timeout} s:\n{tail}")

    def kill9(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        self.kill9()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._log_file.close()


@pytest.fixture
def ha_store(zk_hosts: str, zk_chroot: str) -> Iterator[ZooKeeperStore]:
    store = connect(f"zk://{zk_hosts}{zk_chroot}", "ha")
    yield store
    store.close()


def test_a_standby_takes_over_after_kill_9_without_restarting_tasks(
    tmp_path: Path, zk_hosts: str, zk_chroot: str, launcher_uri: str, ha_store: ZooKeeperStore
) -> None:
    zk_url = f"zk://{zk_hosts}{zk_chroot}"
    job = {"name": "survivor", "command": "sleep 8", "cpus": 0.1, "mem": 32, "gpus": 1,
           "restart": {"policy": "OnFailure", "backoff_limit": 3}}
    with LocalCluster(agents=2, gpus_per_agent=2, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
                      status_update_retry=1.0, allocation_interval=0.2) as cluster:
        leader = Scheduler(cluster.master_address, zk_url, "a:1", launcher_uri, tmp_path / "a.log", job=job)
        standby: Scheduler | None = None
        try:
            leader.wait_line("LEADER", 30)
            job_id = leader.wait_line("JOB ", 30)[0].split()[1]
            standby = Scheduler(cluster.master_address, zk_url, "b:2", launcher_uri, tmp_path / "b.log")
            wait_for(lambda: ha_store.get(job_id).data["state"] == "RUNNING", 30, "the job never ran")
            wait_for(lambda: len(ha_store.leader_election().contenders()) == 2, 15, "no standby")
            leader.kill9()
            _, took = standby.wait_line("LEADER", 15)
            assert took <= 15
            done = wait_for(
                lambda: (d := ha_store.get(job_id).data)["state"] in ("SUCCEEDED", "FAILED", "KILLED") and d,
                40, "the job did not finish",
            )
            assert done["state"] == "SUCCEEDED", done
            # Not restarted: the first attempt ran to the end, and Mesos saw exactly one launch.
            assert done["attempt"] == 0
            assert done["restarts"] == 0
            names = [t["name"] for f in cluster.state()["frameworks"]
                     for t in f.get("tasks", []) + f.get("completed_tasks", [])]
            assert names == [f"{job_id}.task-0"]
        finally:
            leader.close()
            if standby is not None:
                standby.close()
