"""A gang whose free GPUs free up on two agents at different moments runs (live: real ZooKeeper, the local
cluster, the real scheduler). Each agent's offer first comes alone and is declined while the gang waits;
the decline filters end in step (`core.declinegrid`) and the master offers agents whose filters have ended
in one batch (issue 17: the long soak saw such gangs wait out its whole drain)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone

pytestmark = [pytest.mark.slow, pytest.mark.zookeeper]

SMALL = {"command": "sleep 600", "cpus": 0.1, "mem": 32}


@pytest.fixture
def local(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    stack = Standalone(zk_hosts=zk_hosts, framework_name=f"gangs-{uuid.uuid4().hex[:8]}",
                       workdir=tmp_path_factory.mktemp("gangs"), tick_seconds=0.2)
    with stack:
        yield stack


def poll(what, until, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if until(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.1)


def test_a_gang_gets_gpus_freed_on_two_agents_at_different_moments(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    # Every GPU busy (two agents, two GPUs each): one whole-GPU job per GPU.
    fillers = [api.submit({"name": f"filler-{n}", "gpus": 1, **SMALL})[0]["id"] for n in range(4)]
    agents = {}
    for job_id in fillers:
        job = poll(lambda job_id=job_id: api.job(job_id), lambda j: j["state"] == "RUNNING")
        agents[job_id] = job["tasks"][0]["agent_id"]
    assert len(set(agents.values())) == 2, agents
    gang, _ = api.submit({"name": "gang", "command": "sleep 30",
                          "roles": {"worker": {"instances": 2, "cpus": 0.1, "mem": 32, "gpus": 1}}})
    poll(lambda: api.job(gang["id"])["state"], lambda s: s == "PENDING")
    first = fillers[0]
    second = next(job_id for job_id in fillers if agents[job_id] != agents[first])
    # One GPU frees up on the first agent; its offer comes alone and is declined (the gang needs two).
    api.kill(first)
    poll(lambda: api.job(first)["state"], lambda s: s == "KILLED")
    time.sleep(1.0)     # the second agent's GPU frees up a second later: its offer comes in another round
    api.kill(second)
    poll(lambda: api.job(second)["state"], lambda s: s == "KILLED")
    job = poll(lambda: api.job(gang["id"]), lambda j: j["state"] in ("STAGING", "RUNNING"), timeout=15.0)
    assert sorted(task["agent_id"] for task in job["tasks"]) == sorted({agents[first], agents[second]})
