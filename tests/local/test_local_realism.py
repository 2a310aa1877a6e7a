"""The local cluster as a newcomer meets it (issue 19): host GPUs split between agents, a clear NVML
error, distinct agent hostnames (so `["hostname","UNIQUE"]` can fit), an image task's skipped Docker
engine said in its status, and a Docker engine started after the first image task still used."""

from __future__ import annotations

from typing import Any

import pytest

from mesos_gpu.local.agent import containerizer as containerizer_module
from mesos_gpu.local.agent import runners
from mesos_gpu.local.agent.containerizer import Containerizer
from mesos_gpu.local.agent.gpus import (
    ENV_FAKE_GPUS,
    GpuDevice,
    NvmlUnavailableError,
    host_devices,
    split_devices,
)
from tests.local.conftest import make_cluster


def _devices(n: int) -> list[GpuDevice]:
    return [GpuDevice(index=i, uuid=f"GPU-{i}", model="M", simulated=False) for i in range(n)]


def test_split_gives_each_device_to_exactly_one_agent() -> None:
    assert [[d.index for d in part] for part in split_devices(_devices(5), 2)] == [[0, 1, 2], [3, 4]]
    assert [[d.index for d in part] for part in split_devices(_devices(2), 3)] == [[0], [1], []]
    assert split_devices([], 2) == [[], []]


def test_nvml_agents_never_offer_the_same_device(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_FAKE_GPUS, "3xFake-A100@40960M")
    with make_cluster(tmp_path, agents=2, gpus_per_agent=None) as cluster:
        offered = [[d.uuid for d in agent.gpus.devices] for agent in cluster.agents]
    flat = [u for uuids in offered for u in uuids]
    assert len(flat) == 3 and len(set(flat)) == 3, offered
    assert [len(u) for u in offered] == [2, 1]


def test_nvml_without_a_driver_fails_with_the_nvml_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FAKE_GPUS, raising=False)

    class NoDriver:
        def init(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    from isolator import nvml

    monkeypatch.setattr(nvml, "real_backend", NoDriver)
    with pytest.raises(NvmlUnavailableError, match="NVML"):
        host_devices()


def test_local_agents_have_distinct_hostnames_that_bind(tmp_path: Any) -> None:
    import socket

    with make_cluster(tmp_path, agents=3) as cluster:
        names = [agent.hostname for agent in cluster.agents]
        hosts = {a["hostname"] for a in cluster.state()["slaves"]}
    assert len(set(names)) == 3 and hosts == set(names), names
    for name in names:  # a TF member binds PORT0 on its agent's hostname
        with socket.socket() as s:
            s.bind((name, 0))


class _FakeSandbox:
    def __init__(self) -> None:
        self.stderr_lines: list[str] = []

    def append_stderr(self, text: str) -> None:
        self.stderr_lines.append(text)


def test_a_docker_engine_started_later_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: list[Any] = []
    connected = object()

    def connect(loop: Any, host: Any = None, timeout: float = 5.0) -> Any:
        if not engine:
            raise RuntimeError("no Docker engine answers")
        return connected

    monkeypatch.setattr(runners, "docker_runner", connect)
    host_runner = object()
    box = Containerizer(
        None, host_runner, None, docker="auto", docker_host=None, real_gpus=False  # type: ignore[arg-type]
    )
    monkeypatch.setattr(containerizer_module, "DOCKER_RECHECK_SECONDS", 0.0, raising=False)
    runner, warnings = box._choose_runner("busybox", [], _FakeSandbox())  # type: ignore[arg-type]
    assert runner is host_runner and "NOT used" in warnings[0]
    engine.append(True)  # the engine starts
    runner, warnings = box._choose_runner("busybox", [], _FakeSandbox())  # type: ignore[arg-type]
    assert runner is connected and warnings == []
