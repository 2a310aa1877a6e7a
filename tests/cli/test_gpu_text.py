"""How the CLI shows a task's GPUs: the amount and, for a share, what its isolation enforces (from the
task view's `enforced` statement, so the CLI never claims more than the server)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from mesos_gpu.commands.jobs import describe, gpu_text
from mesos_gpu.commands.submit import ProgressPrinter
from mesos_gpu.core.model import Isolation
from mesos_gpu.core.sharing import statement


def task(gpus: Any, isolation: str = "exclusive", share: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "task-0", "task_id": "j.task-0.0", "state": "TASK_RUNNING", "agent_id": "a1",
        "hostname": "node-1", "ports": [], "address": None, "exit_code": None, "message": None,
        "gpus": gpus, "isolation": isolation, "enforced": statement(isolation), "share": share,
    }  # fmt: skip


CAPPED = ("memory capped by the share host's NVML watchdog where NVML reports per-process memory; "
          "compute and faults NOT isolated)")
MIG = ("memory, compute and faults isolated for image shares by NVIDIA Multi-Instance GPU and a Docker "
       "device request for the instance)")


@pytest.mark.parametrize(
    ("view", "text"),
    [
        (task(1), "1 (exclusive)"),
        (task(2), "2 (exclusive)"),
        (task(0.25, "capped"),
         "0.25 (capped: " + CAPPED),
        (task(0.5, "mps"),
         "0.5 (mps: memory and compute limited client-side by CUDA MPS control daemon; faults NOT isolated)"),
        (task(0.5, "mig"), "0.5 (mig: " + MIG),
        (task(0.1, "shared"), "0.1 (shared: nothing enforced)"),
        (task({"min": 0.4, "max": 1.0}, "capped"), "0.4-1 (capped: " + CAPPED),
        (task({"min": 0.4, "max": 1.0}, "shared", {"gpus": 0.6, "device": "GPU-8f2a"}),
         "0.6 of 0.4-1 on GPU-8f2a (shared: nothing enforced)"),
        (task(0.25, "mig", {"gpus": 0.285, "device": "MIG-1"}),
         "0.285 (asked 0.25) on MIG-1 "
         "(mig: " + MIG),
    ],
)  # fmt: skip
def test_gpu_text(view: dict[str, Any], text: str) -> None:
    assert gpu_text(view) == text


def test_every_level_names_each_aspect_it_does_not_isolate() -> None:
    for level in Isolation:
        words = statement(level)
        text = gpu_text(task(0.5 if level.is_share else 1, level.value))
        loose = [aspect for aspect in ("memory", "compute", "faults") if words[aspect].startswith("NOT")]
        if len(loose) == 3:
            assert "nothing enforced" in text
        elif loose and level.is_share:
            assert " and ".join(loose) + " NOT isolated" in text or loose[0] + " NOT isolated" in text, text


def test_status_and_follow_show_the_share() -> None:
    job = {
        "id": "j", "name": "j", "tenant": "t", "state": "RUNNING", "submitted_at": None, "restarts": 0,
        "kill_requested": False, "message": "", "wait_reason": "", "terminal": False, "tf_cluster": None,
        "tasks": [task(0.25, "capped", {"gpus": 0.25, "device": "GPU-1"}), {**task(0), "name": "ps-0"}],
    }  # fmt: skip
    shown = describe(job)
    assert "0.25 on GPU-1 (capped: memory capped by the share host's NVML watchdog" in shown
    out = io.StringIO()
    whole = {**task(2), "name": "chief-0", "task_id": "j.chief-0.0"}
    one = {**task(1), "name": "ps-0", "task_id": "j.ps-0.0"}
    ProgressPrinter(out).show({**job, "tasks": [task(0.25, "capped"), whole, one]})
    printed = out.getvalue()
    assert "0.25 GPU (capped: memory capped" in printed
    assert "2 GPUs (exclusive)" in printed and "1 GPU (exclusive)" in printed
