"""An executor that exits by itself fails its tasks with the last lines of its stderr in the message
(issue 19 item 2): "Executor terminated" alone hid e.g. `No module named isolator` of a docker task."""

from __future__ import annotations

from pathlib import Path

from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import AgentThread, framework_info
from tests.local.test_agent_executor_api import executor_info, task_on


def test_an_exited_executor_says_its_stderr_tail(tmp_path: Path) -> None:
    command = "echo noise >&2; echo '/usr/bin/python3: No module named isolator' >&2; exit 1"
    config = AgentConfig(cpus=2, mem=1024, disk=1024, docker="off", executor_registration_timeout=30.0)
    with AgentThread(tmp_path, config) as a:
        a.call(a.agent.launch, framework_info(), task=task_on(executor_info(command=command), "t1"))
        failed = a.master.wait_state("t1", "TASK_FAILED")
        assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
        assert failed["message"].startswith("Executor terminated")
        assert "No module named isolator" in failed["message"]
