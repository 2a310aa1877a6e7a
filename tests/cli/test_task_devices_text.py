"""The CLI names the device(s) an exclusive task runs on when the API knows them (the task view's
`devices`, from the TASK_RUNNING labels of the local agent or the docker executor), and nothing when it
does not (a real Mesos agent's own executors report none)."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.commands.jobs import describe, gpu_text
from mesos_gpu.core.sharing import statement

UUID0, UUID1 = "GPU-5f1c0000-0000-4000-8000-000000000000", "GPU-5f1c0000-0000-4000-8000-000000000001"


def task(gpus: Any, devices: list[dict[str, Any]] | None, share: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    isolation = "capped" if share else "exclusive"
    return {
        "name": "task-0", "task_id": "j.task-0.0", "state": "TASK_RUNNING", "agent_id": "a1",
        "hostname": "node-1", "ports": [], "address": None, "exit_code": None, "message": None,
        "gpus": gpus, "isolation": isolation, "enforced": statement(isolation), "share": share,
        "devices": devices,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("view", "text"),
    [
        (task(1, [{"index": 0, "uuid": UUID0}]), f"1 (exclusive) on GPU 0 ({UUID0})"),
        (task(2, [{"index": 1, "uuid": UUID1}, {"index": 0, "uuid": UUID0}]),
         f"2 (exclusive) on GPU 1 ({UUID1}), GPU 0 ({UUID0})"),
        (task(1, [{"index": None, "uuid": UUID0}]), f"1 (exclusive) on {UUID0}"),
        (task(1, [{"index": 3, "uuid": None}]), "1 (exclusive) on GPU 3"),
        (task(1, None), "1 (exclusive)"),   # not reported: nothing guessed
        (task(1, [])  , "1 (exclusive)"),
    ],
)  # fmt: skip
def test_gpu_text_names_the_devices(view: dict[str, Any], text: str) -> None:
    assert gpu_text(view) == text


def test_a_share_is_shown_on_its_device_once() -> None:
    view = task(0.25, [{"index": None, "uuid": "GPU-1"}], {"gpus": 0.25, "device": "GPU-1"})
    assert gpu_text(view).startswith("0.25 on GPU-1 (capped: ")


def test_status_shows_the_device_of_an_exclusive_task() -> None:
    job = {
        "id": "j", "name": "j", "tenant": "t", "state": "RUNNING", "submitted_at": None, "restarts": 0,
        "kill_requested": False, "message": "", "wait_reason": "", "terminal": False, "tf_cluster": None,
        "tasks": [task(1, [{"index": 1, "uuid": UUID1}])],
    }  # fmt: skip
    assert f"1 (exclusive) on GPU 1 ({UUID1})" in describe(job)
