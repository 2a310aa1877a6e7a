"""A `containerizer: "docker"` job whose command fails says why in its state, end to end (the real
scheduler runtime, the local cluster, `python -m isolator.executor` on the session's dockerd): the last
lines of the container's stderr follow "Command exited with status N", as for a command task."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.integration.test_docker_jobs import (  # noqa: F401 - module fixtures
    docker_cluster,
    docker_job,
    docker_runtime,
    final_state,
)

pytestmark = [pytest.mark.zookeeper, pytest.mark.docker, pytest.mark.slow]


def test_a_failing_docker_jobs_state_says_its_stderr_tail(
    docker_runtime: SchedulerRuntime, docker_image: str  # noqa: F811
) -> None:
    command = "echo loading; echo '/bin/sh: python3: not found' >&2; exit 127"
    view, _ = docker_runtime.submit(docker_job(docker_image, "nopython", command))
    done: dict[str, Any] = final_state(docker_runtime, view["id"])
    assert done["state"] == "FAILED", done
    member = done["members"]["task-0"]
    assert member["message"] == (
        "Command exited with status 127; last lines of stderr:\n/bin/sh: python3: not found"
    )
    assert member["exit_code"] == 127
