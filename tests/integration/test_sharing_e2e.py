"""GPU sharing end to end: the real scheduler (unmodified pymesos) against the local cluster, whose agent
runs the real share host executor (`python -m isolator.sharehost`) on simulated GPUs and the fake NVML.

- a share host's life: four 0.25 shares packed on the one GPU by one share host (one executor), which
  lingers once empty, exits, and gives its GPU back to Mesos (a whole-GPU job then runs on it);
- the watchdog: a capped share that declares more GPU memory than granted (fake NVML per-process memory)
  is killed with "GPU memory ... used, ... allowed", its neighbour on the host finishes;
- the TF example (examples/tf_shares) as two capped 0.5 shares on one simulated GPU, each member's
  TensorFlow told its memory limit by the launcher;
- the other levels on simulated hardware: an `mps` share's client environment (thread percentage, pinned
  memory limit) on an agent with `--mps`, a `mig` share on the smallest MIG instance that fits.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.placement.policy import PlacementPolicy
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharing import ENV_GPU_MEMORY_LIMIT
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.local.agent.gpus import ENV_FAKE_NVML_DIR
from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.scheduler_main import rendezvous_cleaner
from mesos_gpu.store.zk import ZooKeeperStore
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

LINGER = 2.0
REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "examples" / "tf_distributed" / "train.py"
ENDED = ("SUCCEEDED", "FAILED", "KILLED")


@pytest.fixture
def stack(
    tmp_path: Path, store: ZooKeeperStore, zk_hosts: str, zk_chroot: str, launcher_uri: str
) -> Iterator[Any]:
    """`stack(**cluster_options)` -> (cluster, runtime): one agent with one simulated GPU (every share
    must go to the same device, default 16 GB), and the scheduler with share hosts started as this
    interpreter's `-m isolator.sharehost`, a short linger, and TF members launched by this interpreter
    (it has TensorFlow). Both are stopped at the end."""
    started: list[tuple[LocalCluster, SchedulerRuntime]] = []

    def start(**cluster_options: Any) -> tuple[LocalCluster, SchedulerRuntime]:
        options = {"gpu_memory": 16384, **cluster_options}
        cluster = LocalCluster(
            agents=1, gpus_per_agent=1, workdir=tmp_path / f"cluster{len(started)}", heartbeat_interval=1.0,
            status_update_retry=1.0, allocation_interval=0.2, **options,
        ).start()
        runtime = SchedulerRuntime(
            store=store,
            planner=make_planner(PlacementPolicy(cpu_tasks_on_gpu_agents=True)),
            options=FrameworkOptions(
                master=cluster.master_address, name="it", user="root", failover_timeout=600
            ),
            launch=LaunchSettings(
                framework_name="it", zk_url=f"zk://{zk_hosts}{zk_chroot}/it", launcher_uri=launcher_uri,
                python=sys.executable, share_host_command=f"{sys.executable} -m isolator.sharehost",
                share_linger_seconds=LINGER, kill_grace_seconds=2.0,
            ),
            identifier="127.0.0.1:1",
            heartbeat_timeout=10.0,
            tick_seconds=0.2,
            clear_rendezvous=rendezvous_cleaner(store),
        )
        started.append((cluster, runtime))
        runtime.start()
        wait_for(lambda: runtime.is_leader and runtime.mesos_connected, 20, "the scheduler never registered")
        return cluster, runtime

    yield start
    for cluster, runtime in reversed(started):
        runtime.stop()
        cluster.stop()


@pytest.fixture
def one_gpu(stack: Any) -> tuple[LocalCluster, SchedulerRuntime]:
    return stack()


def submit(runtime: SchedulerRuntime, job: dict[str, Any]) -> str:
    view, _ = runtime.submit(validate_job(job))
    return str(view["id"])


def ended(runtime: SchedulerRuntime, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (view := runtime.job(job_id))["state"] in ENDED and view, timeout,
        f"job {job_id} did not end: {runtime.job(job_id)}",
    )


def master_tasks(cluster: LocalCluster) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for framework in cluster.state().get("frameworks", []):
        tasks.extend(framework.get("tasks", []))
        tasks.extend(framework.get("completed_tasks", []))
    return tasks


def agent_executors(cluster: LocalCluster) -> dict[Any, Any]:
    return cluster.call(lambda: dict(next(iter(cluster.master.agents.values())).executors))


def sandbox_text(cluster: LocalCluster, name: str, needle: str) -> list[str]:
    """The contents of every file called `name` under the cluster's sandboxes that contain `needle`."""
    assert cluster.workdir is not None
    found = []
    for path in {os.path.realpath(p) for p in glob.glob(str(cluster.workdir / "**" / name), recursive=True)}:
        text = Path(path).read_text(errors="replace")
        if needle in text:
            found.append(text)
    return found


def test_four_quarter_shares_share_one_host_which_lingers_then_gives_its_gpu_back(one_gpu: Any) -> None:
    one_gpu, sharing_runtime = one_gpu
    jobs = [
        submit(sharing_runtime, {
            "name": f"quarter{i}", "command": f'echo "share=$MESOS_GPU_SHARE q{i}"; sleep 2',
            "cpus": 0.1, "mem": 32, "gpus": 0.25,
        })
        for i in range(4)
    ]
    # all four run at once: one GPU, one host, 4 x 0.25
    wait_for(lambda: all(sharing_runtime.job(j)["state"] == "RUNNING" for j in jobs), 30,
             f"the four shares never ran together: {[sharing_runtime.job(j)['state'] for j in jobs]}")
    [host] = agent_executors(one_gpu).values()
    host_id = host.info["executor_id"]["value"]
    assert host_id.startswith("sharehost.")
    assert host.resources.scalar("gpus") == 1  # the host's executor holds the whole GPU, once
    views = [ended(sharing_runtime, j) for j in jobs]
    finished_at = time.monotonic()
    assert [v["state"] for v in views] == ["SUCCEEDED"] * 4, views
    shares = [v["members"]["task-0"]["share"] for v in views]
    assert {s["host"] for s in shares} == {host_id}
    assert [s["gpus"] for s in shares] == [0.25] * 4
    assert {s.get("device") for s in shares} == {one_gpu.agents[0].gpus.devices[0].uuid}
    executors = {t["executor_id"] for t in master_tasks(one_gpu) if t["name"].startswith("quarter")}
    assert executors == {host_id}
    for i in range(4):
        assert sandbox_text(one_gpu, "stdout", f"share=0.25 q{i}"), f"no output of quarter{i}"
    # empty: it lingers, then exits; its GPU returns to the offers and a whole-GPU job runs on it
    wait_for(lambda: not agent_executors(one_gpu), LINGER + 15, "the empty share host never exited")
    assert time.monotonic() - finished_at >= LINGER / 2, "the share host did not linger"
    whole = submit(sharing_runtime, {
        "name": "whole", "command": "echo whole=$CUDA_VISIBLE_DEVICES", "cpus": 0.1, "mem": 32, "gpus": 1,
    })
    done = ended(sharing_runtime, whole, timeout=30)
    assert done["state"] == "SUCCEEDED", done
    assert sandbox_text(one_gpu, "stdout", "whole=0")


def test_the_watchdog_kills_a_capped_share_over_its_memory(one_gpu: Any) -> None:
    _, sharing_runtime = one_gpu
    hog = submit(sharing_runtime, {
        "name": "hog", "cpus": 0.1, "mem": 32, "gpus": 0.5, "gpu_memory": 4096, "isolation": "capped",
        # declare 9000 MiB used on its device (the fake NVML's per-process memory), then wait to be killed
        "command": f'echo "$CUDA_VISIBLE_DEVICES 9000" > "${ENV_FAKE_NVML_DIR}/$$"; exec sleep 60',
    })
    neighbour = submit(sharing_runtime, {
        "name": "neighbour", "cpus": 0.1, "mem": 32, "gpus": 0.5, "gpu_memory": 4096, "isolation": "capped",
        "command": f'echo "$CUDA_VISIBLE_DEVICES 1000" > "${ENV_FAKE_NVML_DIR}/$$"; sleep 4; echo fine',
    })
    killed = ended(sharing_runtime, hog, timeout=60)
    assert killed["state"] == "FAILED", killed
    member = killed["members"]["task-0"]
    assert member["state"] == "TASK_FAILED"
    assert "GPU memory 9000 MiB used, 4096 MiB allowed (capped share)" in str(member.get("message")), member
    calm = ended(sharing_runtime, neighbour, timeout=60)
    assert calm["state"] == "SUCCEEDED", calm
    assert calm["members"]["task-0"]["share"]["host"] == member["share"]["host"]


@pytest.mark.tensorflow
def test_the_tf_example_runs_as_two_capped_half_shares_on_one_gpu(one_gpu: Any) -> None:
    one_gpu, sharing_runtime = one_gpu
    example = json.loads((REPO / "examples" / "tf_shares" / "job.json").read_text())
    example.pop("image")  # no registry here: the share host runs the command on the host
    example["command"] = f"{sys.executable} {TRAIN} --steps 20"
    assert {r["gpus"] for r in example["roles"].values()} == {0.5} and example["isolation"] == "capped"
    job = submit(sharing_runtime, example)
    done = ended(sharing_runtime, job, timeout=240)
    assert done["state"] == "SUCCEEDED", done
    shares = [m["share"] for m in done["members"].values()]
    assert len(shares) == 2 and len({s["host"] for s in shares}) == 1  # one share host, one GPU
    assert [s["gpus"] for s in shares] == [0.5, 0.5] and [s["gpu_memory"] for s in shares] == [8192, 8192]
    told = sandbox_text(one_gpu, "stderr", f"{ENV_GPU_MEMORY_LIMIT}=8192 but TensorFlow lists no GPU")
    assert len(told) == 2, "each member's TensorFlow was not told its 8192 MB (the hook did not run)"
    trained = sandbox_text(one_gpu, "stdout", '"loss"')
    assert len(trained) == 2, trained


def test_an_mps_share_gets_its_thread_percentage_and_memory_limit(stack: Any) -> None:
    cluster, runtime = stack(gpu_mps=True)
    show = (
        "echo mps=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE $CUDA_MPS_PINNED_DEVICE_MEM_LIMIT $CUDA_VISIBLE_DEVICES"
    )
    job = submit(runtime, {"name": "mps", "command": show, "cpus": 0.1, "mem": 32, "gpus": 0.25,
                           "isolation": "mps"})
    done = ended(runtime, job)
    assert done["state"] == "SUCCEEDED", done
    uuid = cluster.agents[0].gpus.devices[0].uuid
    assert sandbox_text(cluster, "stdout", f"mps=25 0=4096M {uuid}"), "no MPS client environment"


def test_a_mig_share_gets_the_smallest_instance_that_fits(stack: Any) -> None:
    cluster, runtime = stack(gpu_memory=40960, gpu_mig="3g.20gb/2g.10gb/1g.5gb/1g.5gb")
    show = 'echo "mig=$NVIDIA_VISIBLE_DEVICES"'
    job = submit(runtime, {"name": "mig", "command": show, "cpus": 0.1, "mem": 32, "gpus": 0.25,
                           "isolation": "mig"})
    done = ended(runtime, job)
    assert done["state"] == "SUCCEEDED", done
    share = done["members"]["task-0"]["share"]
    assert (share["mig_profile"], share["gpu_memory"]) == ("2g.10gb", 10240), share  # 2/7 >= 0.25 > 1/7
    [text] = sandbox_text(cluster, "stdout", "mig=MIG-")
    assert text.strip() == f"mig={share['device']}", (text, share)
