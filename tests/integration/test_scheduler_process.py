"""The real `mesos-gpu scheduler` process against the local cluster and a real ZooKeeper.

One test drives it through its REST API; the other starts it with the environment the Universe
package's Marathon template renders (defaults, pointed at the local cluster and the test ZooKeeper)
and checks it registers under the package's framework name and answers its health check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.zookeeper import free_port
from tests.integration.conftest import wait_for
from tests.universe.render import render

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]
BIN = Path(sys.executable).parent


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class SchedulerCommand:
    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self._log: IO[str] = log.open("w")
        self.log = log
        self.process = subprocess.Popen(
            [str(BIN / "mesos-gpu"), "scheduler"], env={**os.environ, **env}, stdout=self._log,
            stderr=subprocess.STDOUT, text=True,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(agents=2, gpus_per_agent=2, workdir=tmp_path / "cluster", heartbeat_interval=1.0,
                      status_update_retry=1.0, allocation_interval=0.2) as running:
        yield running


def _healthy(url: str) -> dict[str, Any] | None:
    try:
        status, body = http("GET", f"{url}/v1/health")
    except OSError:
        return None
    return body if status == 200 and body.get("leader") and body.get("mesos", {}).get("connected") else None


def test_a_job_submitted_through_the_api_runs_to_succeeded(
    tmp_path: Path, cluster: LocalCluster, zk_hosts: str, zk_chroot: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    scheduler = SchedulerCommand({
        "MESOS_GPU_MASTER": cluster.master_address,
        "MESOS_GPU_ZK": f"zk://{zk_hosts}{zk_chroot}",
        "MESOS_GPU_FRAMEWORK_NAME": "api-test",
        "MESOS_GPU_API_PORT": str(port),
        "MESOS_GPU_CPU_TASKS_ON_GPU_AGENTS": "fallback",
    }, tmp_path / "scheduler.log")
    try:
        wait_for(lambda: _healthy(url), 30, f"the scheduler never became healthy:\n{_tail(tmp_path)}")
        status, job = http("POST", f"{url}/v1/jobs", {
            "name": "hello", "command": "echo hello from $CUDA_VISIBLE_DEVICES", "cpus": 0.1, "mem": 32,
            "gpus": 1,
        })
        assert status == 201, job
        done = wait_for(
            lambda: (j := http("GET", f"{url}/v1/jobs/{job['id']}")[1])["state"] == "SUCCEEDED" and j,
            30, "the job did not succeed",
        )
        assert done["state"] == "SUCCEEDED"
    finally:
        scheduler.stop()
    assert scheduler.process.returncode == 0, _tail(tmp_path)


def test_the_universe_defaults_register_under_the_package_framework_name(
    tmp_path: Path, cluster: LocalCluster, zk_hosts: str, zk_chroot: str
) -> None:
    app = render()  # the package's defaults, rendered as Cosmos does
    framework_name = app["labels"]["DCOS_PACKAGE_FRAMEWORK_NAME"]
    port = free_port()
    env = {name: value for name, value in app["env"].items() if isinstance(value, str)}
    # Marathon gives the task its host and ports; the cluster's addresses replace DC/OS's names.
    env.update({
        "HOST": "127.0.0.1", "PORT0": str(port), "PORTS": str(port), "PORT_API": str(port),
        "MESOS_GPU_MASTER": cluster.master_address,
        "MESOS_GPU_ZK": f"zk://{zk_hosts}{zk_chroot}",
    })
    assert env["DCOS_PACKAGE_FRAMEWORK_NAME"] == framework_name
    scheduler = SchedulerCommand(env, tmp_path / "scheduler.log")
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for(lambda: _healthy(url), 30, f"no healthy scheduler:\n{_tail(tmp_path)}")
        assert health["leader"] is True
        names = [f["name"] for f in cluster.state()["frameworks"]]
        assert names == [framework_name]
    finally:
        scheduler.stop()


def _tail(tmp_path: Path) -> str:
    log = tmp_path / "scheduler.log"
    return log.read_text()[-3000:] if log.exists() else ""
