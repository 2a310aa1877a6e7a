"""The share host executor end to end: `python -m isolator.sharehost` as a real subprocess on the
unmodified pymesos executor driver, started by the local agent as a custom executor holding one whole
simulated GPU (described to it through the fake NVML), running two capped shares; the one that declares
more GPU memory than its grant is killed by the watchdog; then the host lingers and exits."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from isolator.fakenvml import PROCESSES_ENV
from mesos_gpu.core.sharing import (
    LABEL_DEVICE,
    LABEL_ENFORCEMENT,
    LABEL_GPU_MEMORY,
    LABEL_ISOLATION,
    LABEL_SHARE,
    LABEL_SHARE_HOST,
)
from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import FRAMEWORK_ID, AgentThread, command_task, framework_info

FAKE_SPEC = "1xSimulated-GPU@16384M"
UUID0 = "GPU-fa4e0000-0000-4000-8000-000000000000"


def b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def share_executor(host_id: str, linger: float, isolation: str = "capped") -> dict:
    data = {"host": host_id, "isolation": isolation, "linger_seconds": linger, "device_memory": 16384,
            "mig_layout": ""}  # fmt: skip
    return {
        "type": "CUSTOM",
        "executor_id": {"value": host_id},
        "name": host_id,
        "command": {"value": f"{sys.executable} -m isolator.sharehost --fake-gpus '{FAKE_SPEC}'"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
            {"name": "gpus", "type": "SCALAR", "scalar": {"value": 1}},
        ],
        "data": b64(data),
    }


def share_task(executor: dict, task_id: str, command: str, memory: int, isolation: str = "capped") -> dict:
    task = command_task(task_id)
    del task["command"]
    task["executor"] = executor
    share = {"host": executor["executor_id"]["value"], "isolation": isolation, "gpus": 0.5,
             "gpu_memory": memory, "device_memory": 16384}  # fmt: skip
    payload = {"command": command, "image": None, "uris": [], "env": {"GREETING": "hi"}, "share": share,
               "resources": {"cpus": 0.1, "mem": 32}, "kill_grace_seconds": 1}  # fmt: skip
    task["data"] = b64(payload)
    return task


DECLARE = 'echo "$CUDA_VISIBLE_DEVICES {mib}" > "{processes}/$$"'


@pytest.fixture
def processes(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "gpu-processes"
    directory.mkdir()
    monkeypatch.setenv(PROCESSES_ENV, str(directory))
    return directory


def test_two_capped_shares_one_killed_by_the_watchdog_then_the_host_lingers_and_exits(tmp_path, processes):
    config = AgentConfig(
        cpus=2, mem=1024, disk=1024, gpus=1, docker="off", executor_registration_timeout=30.0
    )
    with AgentThread(tmp_path / "agent", config) as a:
        ex = share_executor("sharehost.t1", linger=1.0)
        fw = framework_info(capabilities=("TASK_KILLING_STATE",))
        small = DECLARE.format(mib=1000, processes="$" + PROCESSES_ENV)
        big = DECLARE.format(mib=9000, processes="$" + PROCESSES_ENV)
        show = 'echo "$GREETING $MESOS_GPU_ISOLATION $MESOS_GPU_SHARE $MESOS_GPU_MEMORY_LIMIT_MB"'
        ok = f"{small}; {show}; sleep 1.5"
        a.call(a.agent.launch, fw, task=share_task(ex, "t1", ok, 4096))
        a.call(a.agent.launch, fw, task=share_task(ex, "t2", f"{big}; echo $$; sleep 30", 4096))

        running = a.master.wait_state("t1", "TASK_RUNNING", timeout=20)
        labels = {x["key"]: x["value"] for x in running["labels"]["labels"]}
        assert labels == {LABEL_DEVICE: UUID0, LABEL_SHARE: "0.5", LABEL_GPU_MEMORY: "4096",
                          LABEL_ISOLATION: "capped", LABEL_SHARE_HOST: "sharehost.t1",
                          LABEL_ENFORCEMENT: "simulated (fake NVML): nothing is enforced on a real GPU",
                          }  # fmt: skip
        assert json.loads(base64.b64decode(running["data"]))["device"] == UUID0
        assert running["executor_id"] == {"value": "sharehost.t1"}

        failed = a.master.wait_state("t2", "TASK_FAILED", timeout=15)
        assert failed["message"] == "GPU memory 9000 MiB used, 4096 MiB allowed (capped share)"
        assert failed["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY"

        finished = a.master.wait_state("t1", "TASK_FINISHED", timeout=15)
        assert finished["message"] == "Command exited with status 0"
        assert a.master.states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
        path = f"/frameworks/{FRAMEWORK_ID}/executors/sharehost.t1/runs/latest/tasks/t1/stdout"
        status, _, body = a.http("GET", f"/files/read?path={path}&offset=0")
        assert status == 200 and json.loads(body)["data"] == "hi capped 0.5 4096\n"

        a.master.wait_for(lambda: a.master.of("executor_exited"), timeout=15)
        assert a.master.of("executor_exited") == [("S0", FRAMEWORK_ID, "sharehost.t1", 0)]
        run = next((tmp_path / "agent/agents/S0/frameworks" / FRAMEWORK_ID / "executors/sharehost.t1/runs")
                   .glob("[!l]*"))  # fmt: skip
        killed = int((run / "tasks/t2/stdout").read_text())
        assert not os.path.exists(f"/proc/{killed}")  # the watchdog's kill took it
