"""`MESOS_GPU_PLACEMENT_STRATEGY` and `MESOS_GPU_BACKFILL` reach the scheduler's placement policy; the
settings' strategy names are exactly placement's."""

from __future__ import annotations

from typing import get_args

import pytest

from mesos_gpu.core.config import PlacementStrategy, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.placement.policy import STRATEGIES
from mesos_gpu.scheduler_main import placement_policy


def test_the_settings_name_every_strategy_placement_has():
    assert get_args(PlacementStrategy) == STRATEGIES


def test_defaults_are_the_default_strategy_with_backfill():
    policy = placement_policy(SchedulerSettings.from_env({}))
    assert (policy.strategy, policy.backfill) == ("default", True)


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_is_read(name):
    settings = SchedulerSettings.from_env({"MESOS_GPU_PLACEMENT_STRATEGY": name.upper()})
    assert placement_policy(settings).strategy == name


def test_strict_fifo_is_read():
    assert placement_policy(SchedulerSettings.from_env({"MESOS_GPU_BACKFILL": "false"})).backfill is False


@pytest.mark.parametrize(("name", "value"), [("MESOS_GPU_PLACEMENT_STRATEGY", "bestfit"),
                                             ("MESOS_GPU_BACKFILL", "sometimes")])
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(ValidationError, match=name):
        SchedulerSettings.from_env({name: value})


def test_mesos_gpu_local_honours_the_placement_variables_and_refuses_bad_ones():
    from mesos_gpu.standalone import StandaloneError, local_settings

    chosen = local_settings({"MESOS_GPU_PLACEMENT_STRATEGY": "worst-fit", "MESOS_GPU_BACKFILL": "false",
                             "MESOS_GPU_SHARE_HOSTS": "spread"})
    assert (chosen.placement_strategy, chosen.backfill, chosen.share_hosts) == ("worst-fit", False, "spread")
    for name, value in (("MESOS_GPU_PLACEMENT_STRATEGY", "bogus"), ("MESOS_GPU_BACKFILL", "maybe")):
        with pytest.raises(StandaloneError, match=name):
            local_settings({name: value})
