"""Secrets and volumes of image tasks on the session's private dockerd, end to end (real scheduler, local
cluster, real engine): a mesos-containerizer job with an image (the local agent's Docker runner) and a
docker-containerizer job (the isolator's executor, a real subprocess) both see the env secret, read the
host directory, cannot write it when it is RO (the engine enforces it: a bind mount), and write a Docker
named volume; the secret's value is in no record, log record or container label/environment dump of
ours."""

from __future__ import annotations

import hashlib
import json
import secrets as random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import connect
from tests.integration.conftest import LogRecords, wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.docker, pytest.mark.slow]

VALUE = f"pw-{random.token_hex(16)}"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()
SCRIPT = (
    'printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1; cat /data/greeting.txt; '
    "if touch /data/x 2>/dev/null; then echo data-writable; else echo data-read-only; fi; "
    "echo cached > /cache/note && echo cache-written"
)


@pytest.fixture(scope="module")
def host_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hostdata")
    (directory / "greeting.txt").write_text("hello from the host\n")
    return directory


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_daemon: Any) -> Iterator[LocalCluster]:
    secrets_dir = tmp_path_factory.mktemp("secrets")
    (secrets_dir / "db").write_text(VALUE)
    with LocalCluster(
        agents=1, gpus_per_agent=0, workdir=tmp_path_factory.mktemp("mounts-cluster"), heartbeat_interval=1.0,
        status_update_retry=1.0, allocation_interval=0.2,
        agent_options={"docker_host": docker_daemon.base_url, "executor_shutdown_grace_period": 3.0,
                       "secrets_dir": str(secrets_dir)},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def runtime(cluster: LocalCluster, docker_daemon: Any, zk_hosts: str, records: LogRecords,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerRuntime]:
    chroot = f"/test-mounts-{uuid.uuid4().hex[:12]}"
    store = connect(f"zk://{zk_hosts}{chroot}", "it")
    command = (f"{sys.executable} -m isolator.executor --docker-host {docker_daemon.base_url} "
               f"--allocator-dir {tmp_path_factory.mktemp('allocator')}")
    started = SchedulerRuntime(
        store=store, planner=make_planner(PlacementPolicy(cpu_tasks_on_gpu_agents=True)),
        options=FrameworkOptions(master=cluster.master_address, name="it-mounts", user="root",
                                 failover_timeout=600),
        launch=LaunchSettings(framework_name="it-mounts", zk_url=f"zk://{zk_hosts}{chroot}/it",
                              kill_grace_seconds=1.0, docker_executor_command=command),
        identifier="127.0.0.1:1", heartbeat_timeout=10.0, tick_seconds=0.2,
    )
    started.start()
    try:
        wait_for(lambda: started.is_leader and started.mesos_connected, 20, "the scheduler never registered")
        yield started
    finally:
        started.stop()
        store.close()


def output_of(cluster: LocalCluster, task_id: str) -> str:
    """The stdout of the (ended) task's sandbox: its own run dir, or its executor's."""
    root = Path(cluster.agents[0].root)
    for path in root.rglob("stdout"):
        if f"/executors/{task_id}/runs/" in str(path):
            return path.read_text()
    raise AssertionError(f"no sandbox for {task_id}")


@pytest.fixture(scope="module")
def engine(docker_image: str, docker_client: Any, host_data: Path) -> tuple[str, Any, Path]:
    """The test image, the engine's client and the host directory the jobs mount."""
    return docker_image, docker_client, host_data


@pytest.mark.parametrize("containerizer", ["mesos", "docker"])
def test_an_image_task_gets_its_secret_and_its_volumes_as_mounts(
    runtime: SchedulerRuntime, cluster: LocalCluster, engine: tuple[str, Any, Path], records: LogRecords,
    containerizer: str,
) -> None:
    docker_image, docker_client, host_data = engine
    volume = f"cache-{uuid.uuid4().hex[:8]}"
    spec = validate_job({
        "name": f"mounts-{containerizer}", "image": docker_image, "containerizer": containerizer,
        "command": SCRIPT, "cpus": 0.2, "mem": 64,
        "secrets": {"db": {"source": "db"}}, "env": {"DB_PASSWORD": {"secret": "db"}},
        "volumes": [{"container_path": "/data", "host_path": str(host_data), "mode": "RO"},
                    {"container_path": "/cache", "docker_volume": {"name": volume}, "mode": "RW"}],
    })
    view, _ = runtime.submit(spec)
    done = wait_for(lambda: (v := runtime.job(view["id"]))["state"] in ("SUCCEEDED", "FAILED") and v, 60,
                    "the job did not end")
    try:
        assert done["state"] == "SUCCEEDED", done
        output = output_of(cluster, done["members"]["task-0"]["task_id"])
        assert output.splitlines()[:4] == [DIGEST, "hello from the host", "data-read-only", "cache-written"]
        assert not (host_data / "x").exists()
        assert docker_client.volumes.get(volume).name == volume
        seen = [json.dumps(done), json.dumps(runtime.job(view["id"])), *records.lines]
        assert [text for text in seen if VALUE in text] == []
    finally:
        for container in docker_client.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)
