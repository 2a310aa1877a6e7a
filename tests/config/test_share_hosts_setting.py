"""`MESOS_GPU_SHARE_HOSTS` chooses how placement opens share hosts (`pack`, the default, or `spread`),
and the scheduler process hands it to its placement policy."""

from __future__ import annotations

import pytest

from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.placement.policy import SHARE_HOST_PLACEMENTS
from mesos_gpu.scheduler_main import placement_policy


def test_pack_is_the_default() -> None:
    assert SchedulerSettings.from_env({}).share_hosts == "pack"
    assert placement_policy(SchedulerSettings.from_env({})).share_hosts == "pack"


@pytest.mark.parametrize("value", SHARE_HOST_PLACEMENTS)
def test_each_placement_is_taken(value: str) -> None:
    settings = SchedulerSettings.from_env({"MESOS_GPU_SHARE_HOSTS": value.upper()})
    assert settings.share_hosts == value
    assert placement_policy(settings).share_hosts == value


def test_a_bad_value_is_named() -> None:
    with pytest.raises(ValidationError, match="MESOS_GPU_SHARE_HOSTS"):
        SchedulerSettings.from_env({"MESOS_GPU_SHARE_HOSTS": "scatter"})


def test_cpu_tasks_on_gpu_agents_still_reaches_the_policy() -> None:
    settings = SchedulerSettings.from_env({"MESOS_GPU_CPU_TASKS_ON_GPU_AGENTS": "fallback"})
    assert placement_policy(settings).cpu_tasks_on_gpu_agents is True


def test_the_setting_offers_exactly_placements_choices() -> None:
    from typing import get_args

    from mesos_gpu.core.config import ShareHostPlacement

    assert get_args(ShareHostPlacement) == SHARE_HOST_PLACEMENTS
