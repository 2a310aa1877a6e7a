"""A profile switch at a scheduled time on the live local cluster (real ZooKeeper, local master and agents,
the real scheduler and API). By day (one GPU of each agent kept for share hosts) a whole-GPU job waits with
the profile's reason although a GPU is idle, a 0.5 share runs on a share host; at the scheduled minute the
night profile (no share hosts, nothing kept) comes into force: the waiting job gets the idle GPU at once, a
new share waits with the profile's reason instead of joining the running host, and a whole-GPU job gets
the host's GPU once the running share has ended and its host has exited."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.cli.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.zookeeper]


@pytest.fixture
def local(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    stack = Standalone(zk_hosts=zk_hosts, framework_name=f"profiles-{uuid.uuid4().hex[:8]}",
                       workdir=tmp_path_factory.mktemp("profiles"), tick_seconds=0.2, share_linger_seconds=6,
                       cluster_options={"allocation_interval": 0.2})
    with stack:
        yield stack


def cron_at(instant: float) -> str:
    when = datetime.fromtimestamp(instant, UTC)
    return f"{when.minute} {when.hour} {when.day} {when.month} *"


def poll(what, until, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if until(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def state_of(api: ApiClient, job_id: str) -> str:
    job = api.job(job_id)
    tasks = job["tasks"]
    return tasks[0]["state"] if tasks and job["state"] == "RUNNING" else job["state"]


def test_a_scheduled_switch_moves_a_gpu_from_shares_to_whole_gpu_work(local: Standalone) -> None:
    api = ApiClient(local.api_url)
    now = time.time()
    day_at = now // 60 * 60                               # the minute now began: day is in force
    night_at = day_at + 60 * (2 if now - day_at > 30 else 1)  # the next minute at least 30 s away
    document = {
        "default": {"limit": None, "may_borrow": True}, "unassigned_gpus": 100,   # no quota in the way
        "profiles": {
            "time_zone": "UTC",
            "profiles": {"day": {"groups": [{"share_gpus": 1}]}, "night": {"groups": [{"share_gpus": 0}]}},
            "schedule": [{"at": cron_at(day_at), "profile": "day"},
                         {"at": cron_at(night_at), "profile": "night"}],
        },
    }
    api.request("PUT", "/v1/tenants", document)
    small = {"command": "sleep 600", "cpus": 0.1, "mem": 32}
    # By day one GPU of each agent (two GPUs each) is kept for share hosts: one whole GPU each for work.
    fillers = [api.submit({"name": f"filler-{n}", "gpus": 1, **small})[0] for n in range(2)]
    for filler in fillers:
        poll(lambda job=filler: state_of(api, job["id"]), lambda s: s == "TASK_RUNNING")
    share, _ = api.submit({"name": "day-share", "gpus": 0.5, **small})
    poll(lambda: state_of(api, share["id"]), lambda s: s == "TASK_RUNNING")
    profile = api.cluster()["profile"]
    assert (profile["current"], profile["next"], profile["next_at_epoch"]) == ("day", "night", night_at)
    assert "GPU profile: day since" in run_cli("cluster", api=local.api_url).stdout
    # The other agent's second GPU is idle, but kept for share hosts: a whole-GPU job waits, saying so.
    day_train, _ = api.submit({"name": "day-train", "gpus": 1, **small})
    reason = poll(lambda: api.job(day_train["id"]).get("wait_reason") or "",
                  lambda r: "kept for gpu shares by profile 'day'" in r)
    assert "1 gpu kept for gpu shares by profile 'day'" in reason, reason
    assert time.time() < night_at, "the day ended before the job was seen waiting: the test is too slow"
    # One whole GPU more: only the share host's agent can have it, once its host has gone.
    whole, _ = api.submit({"name": "night-train", "gpus": 1, **small})

    poll(lambda: api.cluster()["profile"]["current"], lambda c: c == "night", timeout=100)
    poll(lambda: state_of(api, day_train["id"]), lambda s: s == "TASK_RUNNING", timeout=60)
    late, _ = api.submit({"name": "night-share", "gpus": 0.5, **small})
    reason = poll(lambda: api.job(late["id"]).get("wait_reason") or "", lambda r: "gpu profile 'night'" in r)
    assert "no new share host" in reason
    assert api.cluster()["profile"]["draining_share_hosts"]          # the day host drains
    assert api.job(whole["id"])["state"] == "PENDING"                 # its GPU is still held by the host

    api.kill(share["id"])                                             # the running share ends
    poll(lambda: (api.job(whole["id"])["state"], api.job(whole["id"]).get("wait_reason"),
                  api.cluster()["share_hosts"]), lambda seen: seen[0] == "RUNNING", timeout=60)
    assert api.job(late["id"])["state"] == "PENDING"
    for job in (whole, late, day_train, *fillers):
        api.kill(job["id"])
