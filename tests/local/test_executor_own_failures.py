"""An executor's own failure says what its stderr says (issue 19: "the docker executor's own failures
carry no stderr tail"): one that never registers (e.g. the docker executor stuck on an unreachable
engine, or its driver unable to reach the agent) fails its tasks with the registration timeout AND the
last lines of its stderr, as one that exits by itself does (tests/local/test_executor_stderr_tail.py)."""

from __future__ import annotations

from pathlib import Path

from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import AgentThread, framework_info
from tests.local.test_agent_executor_api import executor_info, task_on


def test_an_executor_that_never_registers_says_its_stderr_tail(tmp_path: Path) -> None:
    command = "echo 'isolator.executor: cannot reach the Docker Engine: connection refused' >&2; sleep 30"
    config = AgentConfig(cpus=2, mem=1024, disk=1024, docker="off", executor_registration_timeout=1.0)
    with AgentThread(tmp_path, config) as a:
        a.call(a.agent.launch, framework_info(), task=task_on(executor_info(command=command), "t1"))
        failed = a.master.wait_state("t1", "TASK_FAILED")
        assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
        assert failed["message"] == (
            "Executor did not register within 1secs; last lines of stderr:\n"
            "isolator.executor: cannot reach the Docker Engine: connection refused"
        )
