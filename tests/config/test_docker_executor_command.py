"""MESOS_GPU_DOCKER_EXECUTOR_COMMAND (issue 19 item 2): how agents start the Docker executor; the local
cluster uses its own interpreter, as for the share host, so an unactivated virtualenv works."""

from __future__ import annotations

import shlex
import sys

import pytest

from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.taskinfo import DOCKER_EXECUTOR_COMMAND


def test_the_default_is_python3_and_the_variable_sets_it():
    assert SchedulerSettings.from_env({}).docker_executor_command == DOCKER_EXECUTOR_COMMAND
    command = "/opt/venv/bin/python -m isolator.executor"
    assert (
        SchedulerSettings.from_env({ENV.DOCKER_EXECUTOR_COMMAND: command}).docker_executor_command == command
    )
    assert "MESOS_GPU_DOCKER_EXECUTOR_COMMAND" in ENV.names()


def test_a_multi_line_command_is_refused_naming_the_variable():
    with pytest.raises(ValidationError) as info:
        SchedulerSettings.from_env({ENV.DOCKER_EXECUTOR_COMMAND: "python3 -m\nisolator.executor"})
    assert ENV.DOCKER_EXECUTOR_COMMAND in str(info.value)


def test_launch_settings_carry_the_docker_executor_command():
    from mesos_gpu.scheduler_main import launch_settings

    env = {ENV.DOCKER_EXECUTOR_COMMAND: "/opt/py -m isolator.executor"}
    assert launch_settings(SchedulerSettings.from_env(env), 8080).docker_executor_command == (
        "/opt/py -m isolator.executor"
    )


def test_the_local_cluster_runs_the_docker_executor_with_this_interpreter():
    from mesos_gpu.standalone import local_settings

    assert local_settings({}).docker_executor_command == f"{shlex.quote(sys.executable)} -m isolator.executor"
    chosen = local_settings({ENV.DOCKER_EXECUTOR_COMMAND: "/x/py -m isolator.executor"})
    assert chosen.docker_executor_command == "/x/py -m isolator.executor"
