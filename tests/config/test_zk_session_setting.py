"""MESOS_GPU_ZK_SESSION_TIMEOUT: the scheduler's ZooKeeper session (it bounds failover after a kill -9);
10 s by default, 1 to 600 s, and the scheduler process connects its store with it (real ZooKeeper)."""

from __future__ import annotations

import pytest

from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.core.errors import ValidationError
from mesos_gpu.scheduler_main import SchedulerProcess


@pytest.mark.parametrize(("raw", "expected"), [(None, 10.0), ("", 10.0), ("4", 4.0), (" 6.5 ", 6.5),
                                                ("1", 1.0), ("600", 600.0)])
def test_the_session_timeout_is_read_in_seconds_and_defaults_to_10(raw: str | None, expected: float) -> None:
    env = {} if raw is None else {ENV.ZK_SESSION_TIMEOUT: raw}
    assert SchedulerSettings.from_env(env).zk_session_timeout == expected


@pytest.mark.parametrize("raw", ["0", "0.5", "601", "-4", "nan", "inf", "ten"])
def test_a_session_timeout_out_of_range_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SchedulerSettings.from_env({ENV.ZK_SESSION_TIMEOUT: raw})
    [error] = caught.value.errors
    assert error.path == f"/{ENV.ZK_SESSION_TIMEOUT}"


@pytest.mark.zookeeper
def test_the_scheduler_process_asks_zookeeper_for_the_configured_session(zk_url: str) -> None:
    settings = SchedulerSettings.from_env({ENV.ZK: zk_url, ENV.ZK_SESSION_TIMEOUT: "5", ENV.API_PORT: "0",
                                           ENV.MASTER: "127.0.0.1:1"})
    process = SchedulerProcess(settings).start()
    try:
        store = process._store
        client = store.client  # type: ignore[union-attr]
        # kazoo keeps what ZooKeeper granted (ms): 5 s is within the server's 2-20 ticks of 2 s.
        assert client._session_timeout == 5000
    finally:
        process.stop()
