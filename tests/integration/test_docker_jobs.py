"""`containerizer: "docker"` jobs end to end: the real SchedulerRuntime (real ZooKeeper store) submits to
the local cluster, whose agent runs `python -m isolator.executor` as a real subprocess on the unmodified
pymesos executor driver, which runs the image on the session's private dockerd."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolator.docker import LABEL_EXECUTOR_ID, LABEL_FRAMEWORK_ID, LABEL_TASK_ID, SANDBOX_MOUNT
from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import connect
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.docker, pytest.mark.slow]

ENGINE_GPU_ANSWER = 'could not select device driver "" with capabilities: [[gpu]]'
GPU_FAILURE = (
    f"Failed to launch container: the engine refused the GPU request ({ENGINE_GPU_ANSWER}): install the "
    "NVIDIA Container Toolkit and restart dockerd, or use the legacy GPU mode"
)


@pytest.fixture(scope="module")
def docker_cluster(tmp_path_factory: pytest.TempPathFactory, docker_daemon: Any) -> Iterator[LocalCluster]:
    with LocalCluster(
        agents=1,
        gpus_per_agent=2,
        workdir=tmp_path_factory.mktemp("docker-cluster"),
        heartbeat_interval=1.0,
        status_update_retry=1.0,
        allocation_interval=0.2,
        agent_options={"docker_host": docker_daemon.base_url, "executor_shutdown_grace_period": 3.0},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def docker_runtime(
    docker_cluster: LocalCluster, docker_daemon: Any, docker_image: str, zk_hosts: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SchedulerRuntime]:  # fmt: skip
    chroot = f"/test-docker-{uuid.uuid4().hex[:12]}"
    store = connect(f"zk://{zk_hosts}{chroot}", "it")
    allocator_dir = tmp_path_factory.mktemp("allocator")
    command = (
        f"{sys.executable} -m isolator.executor --docker-host {docker_daemon.base_url} "
        f"--allocator-dir {allocator_dir}"
    )
    runtime = SchedulerRuntime(
        store=store,
        planner=make_planner(PlacementPolicy(cpu_tasks_on_gpu_agents=True)),
        options=FrameworkOptions(
            master=docker_cluster.master_address, name="it-docker", user="root", failover_timeout=600
        ),
        launch=LaunchSettings(
            framework_name="it-docker",
            zk_url=f"zk://{zk_hosts}{chroot}/it",
            kill_grace_seconds=1.0,
            docker_executor_command=command,
        ),
        identifier="127.0.0.1:1",
        heartbeat_timeout=10.0,
        tick_seconds=0.2,
    )
    runtime.start()
    try:
        wait_for(lambda: runtime.is_leader and runtime.mesos_connected, 20, "the scheduler never registered")
        yield runtime
    finally:
        runtime.stop()
        store.close()


def docker_job(image: str, name: str, command: str, **resources: Any) -> Any:
    doc = {"name": name, "image": image, "containerizer": "docker", "command": command,
           "cpus": 0.2, "mem": 64, **resources}  # fmt: skip
    return validate_job(doc)


def final_state(runtime: SchedulerRuntime, job_id: str, timeout: float = 30) -> dict:
    return wait_for(
        lambda: (view := runtime.job(job_id))["state"] in ("SUCCEEDED", "FAILED", "KILLED") and view,
        timeout,
        f"job {job_id} did not end: {runtime.job(job_id)}",
    )


def executor_sandbox(cluster: LocalCluster, executor_id: str, timeout: float = 10) -> Path:
    """The sandbox of an executor that has exited (waits for it to exit on its own)."""

    def find() -> Path | None:
        for executor in cluster.agents[0].completed_executors:
            if executor.executor_id == executor_id:
                return Path(executor.sandbox.directory)
        return None

    return wait_for(lambda: cluster.call(find), timeout, f"executor {executor_id} did not exit")


def containers_of(docker_client: Any, task_id: str) -> list[Any]:
    return docker_client.containers.list(all=True, filters={"label": f"{LABEL_TASK_ID}={task_id}"})


def test_a_docker_job_runs_through_the_executor_to_succeeded(
    docker_runtime: SchedulerRuntime, docker_cluster: LocalCluster, docker_image: str, docker_client: Any
) -> None:
    view, _ = docker_runtime.submit(docker_job(docker_image, "hello", "echo hello; echo warn >&2; pwd"))
    done = final_state(docker_runtime, view["id"])
    assert done["state"] == "SUCCEEDED", done
    member = done["members"]["task-0"]
    assert member["state"] == "TASK_FINISHED"
    assert member["message"] == "Command exited with status 0"
    sandbox = executor_sandbox(docker_cluster, member["task_id"])  # the executor exits by itself
    assert (sandbox / "stdout").read_text() == f"hello\n{SANDBOX_MOUNT}\n"
    stderr = (sandbox / "stderr").read_text()
    assert "warn\n" in stderr and "TASK_RUNNING" in stderr  # the container's and the executor's own
    assert containers_of(docker_client, member["task_id"]) == []


def test_a_failing_docker_job_fails_with_its_exit_code(
    docker_runtime: SchedulerRuntime, docker_image: str
) -> None:
    view, _ = docker_runtime.submit(docker_job(docker_image, "three", "exit 3"))
    done = final_state(docker_runtime, view["id"])
    assert done["state"] == "FAILED", done
    member = done["members"]["task-0"]
    assert member["message"] == "Command exited with status 3"
    assert member["exit_code"] == 3


def test_a_killed_docker_job_ends_killed_and_its_container_is_gone(
    docker_runtime: SchedulerRuntime, docker_cluster: LocalCluster, docker_image: str, docker_client: Any
) -> None:
    view, _ = docker_runtime.submit(docker_job(docker_image, "long", "sleep 60", cpus=0.5, mem=48))
    wait_for(lambda: docker_runtime.job(view["id"])["state"] == "RUNNING", 20, "never ran")
    member = docker_runtime.job(view["id"])["members"]["task-0"]
    task_id = member["task_id"]
    (container,) = wait_for(lambda: containers_of(docker_client, task_id), 10, "no container")
    attrs = container.attrs
    framework_id = docker_cluster.call(lambda: docker_cluster.agents[0].executors and next(
        iter(docker_cluster.agents[0].executors.values())).framework_id)  # fmt: skip
    assert attrs["State"]["Running"]
    assert attrs["Config"]["Labels"][LABEL_EXECUTOR_ID] == task_id
    assert attrs["Config"]["Labels"][LABEL_FRAMEWORK_ID] == framework_id
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert attrs["HostConfig"]["Memory"] == 48 * 1024 * 1024
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["HostConfig"]["Privileged"] is False
    assert attrs["Config"]["WorkingDir"] == SANDBOX_MOUNT
    assert any(bind.endswith(f":{SANDBOX_MOUNT}:rw") for bind in attrs["HostConfig"]["Binds"])
    assert "NVIDIA_VISIBLE_DEVICES=void" in attrs["Config"]["Env"]

    docker_runtime.kill(view["id"])
    done = final_state(docker_runtime, view["id"], timeout=20)
    assert done["state"] == "KILLED", done
    assert done["members"]["task-0"]["state"] == "TASK_KILLED"
    assert containers_of(docker_client, task_id) == []
    executor_sandbox(docker_cluster, task_id)
    assert docker_cluster.call(lambda: docker_cluster.agents[0].gpus.available) == 2


def test_a_gpu_docker_job_fails_with_the_engines_answer_and_frees_its_gpu(
    docker_runtime: SchedulerRuntime, docker_cluster: LocalCluster, docker_image: str, docker_client: Any
) -> None:
    # This host has no NVIDIA Container Toolkit: the engine answers the device request with a 500.
    view, _ = docker_runtime.submit(docker_job(docker_image, "gpu", "nvidia-smi", gpus=1))
    done = final_state(docker_runtime, view["id"])
    assert done["state"] == "FAILED", done
    member = done["members"]["task-0"]
    assert member["message"] == GPU_FAILURE
    assert member["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert containers_of(docker_client, member["task_id"]) == []
    executor_sandbox(docker_cluster, member["task_id"])
    agent = docker_cluster.agents[0]
    assert docker_cluster.call(lambda: (agent.gpus.available, agent.gpus.holders())) == (2, {})


def test_an_agent_shutdown_stops_the_container_and_reports_killed(
    docker_runtime: SchedulerRuntime, docker_cluster: LocalCluster, docker_image: str, docker_client: Any
) -> None:
    view, _ = docker_runtime.submit(docker_job(docker_image, "shut", "sleep 60"))
    wait_for(lambda: docker_runtime.job(view["id"])["state"] == "RUNNING", 20, "never ran")
    task_id = docker_runtime.job(view["id"])["members"]["task-0"]["task_id"]
    wait_for(lambda: containers_of(docker_client, task_id), 10, "no container")
    agent = docker_cluster.agents[0]
    executor = docker_cluster.call(
        lambda: next(e for e in agent.executors.values() if e.executor_id == task_id)
    )
    docker_cluster.call(agent.shutdown_executor, executor.framework_id, task_id)  # SHUTDOWN, 3 s grace
    executor_sandbox(docker_cluster, task_id)
    assert containers_of(docker_client, task_id) == []
    wait_for(
        lambda: docker_runtime.job(view["id"])["members"]["task-0"]["state"] == "TASK_KILLED",
        10,
        f"the scheduler never saw TASK_KILLED: {docker_runtime.job(view['id'])}",
    )
    assert (
        "shutdown: stopping 1 task(s)" in (executor_sandbox(docker_cluster, task_id) / "stderr").read_text()
    )
