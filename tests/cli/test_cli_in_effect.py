"""The CLI says what the share host reports is actually in effect for a share (its `in_effect`)."""

from mesos_gpu.commands.jobs import gpu_text
from tests.cli.test_gpu_text import task

NOT_ENFORCED = "memory NOT enforced: NVML reports no per-process memory here"


def test_in_effect_is_said() -> None:
    view = task(0.25, "capped", {"gpus": 0.25, "device": "GPU-1"})
    view["enforced"] = {**view["enforced"], "in_effect": NOT_ENFORCED}
    assert gpu_text(view).endswith(f"NOT isolated; in effect: {NOT_ENFORCED})")


def test_without_in_effect_only_the_statement_is_said() -> None:
    assert "in effect" not in gpu_text(task(0.25, "capped", {"gpus": 0.25, "device": "GPU-1"}))
