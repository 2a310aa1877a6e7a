"""MESOS_GPU_RETENTION_SECONDS and MESOS_GPU_RETENTION_MAX_FINISHED in SchedulerSettings (core.retention)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.retention import DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_FINISHED, RetentionPolicy


def test_the_defaults_keep_a_week_and_ten_thousand() -> None:
    settings = SchedulerSettings.from_env({})
    assert settings.retention == RetentionPolicy(max_age_seconds=DEFAULT_MAX_AGE_SECONDS,
                                                 max_finished=DEFAULT_MAX_FINISHED)
    assert DEFAULT_MAX_AGE_SECONDS == 7 * 24 * 3600 and DEFAULT_MAX_FINISHED == 10_000


@pytest.mark.parametrize(("age", "count", "policy"), [
    ("3600", "50", RetentionPolicy(max_age_seconds=3600.0, max_finished=50)),
    ("0", "50", RetentionPolicy(max_age_seconds=None, max_finished=50)),
    ("0", "0", RetentionPolicy(max_age_seconds=None, max_finished=None)),
    (" 1.5 ", "0", RetentionPolicy(max_age_seconds=1.5, max_finished=None)),
])
def test_zero_turns_a_limit_off(age: str, count: str, policy: RetentionPolicy) -> None:
    settings = SchedulerSettings.from_env({ENV.RETENTION_SECONDS: age, ENV.RETENTION_MAX_FINISHED: count})
    assert settings.retention == policy
    assert settings.retention.limited == (age.strip() != "0" or count != "0")


def test_bad_values_are_named_with_their_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        SchedulerSettings.from_env({ENV.RETENTION_SECONDS: "-1", ENV.RETENTION_MAX_FINISHED: "1.5"})
    paths = {error.path for error in caught.value.errors}
    assert paths == {"/MESOS_GPU_RETENTION_SECONDS", "/MESOS_GPU_RETENTION_MAX_FINISHED"}


@pytest.mark.zookeeper
def test_the_scheduler_process_sweeps_with_the_configured_policy_and_stops_it(zk_url: str) -> None:
    from mesos_gpu.scheduler_main import SchedulerProcess

    settings = SchedulerSettings.from_env({ENV.ZK: zk_url, ENV.API_PORT: "0", ENV.MASTER: "127.0.0.1:1",
                                           ENV.RETENTION_SECONDS: "60", ENV.RETENTION_MAX_FINISHED: "5"})
    process = SchedulerProcess(settings).start()
    sweeper = process._retention
    try:
        assert sweeper is not None
        assert sweeper.policy == RetentionPolicy(max_age_seconds=60.0, max_finished=5)
        assert sweeper._thread is not None and sweeper._thread.is_alive()
    finally:
        process.stop()
    assert process._retention is None and sweeper._thread is None
