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
from pathlib import Path

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


def polite(marks: Path, name: str) -> str:
    """A command that, on SIGTERM, notes the time, takes 2 s to "checkpoint", notes again and exits 143."""
    term, done = marks / f"{name}.term", marks / f"{name}.done"
    return f"trap 'date +%s.%N >> {term}; sleep 2; date +%s.%N >> {done}; exit 143' TERM; sleep 600 & wait"


def test_at_day_plus_drain_seconds_a_whole_gpu_job_on_a_kept_gpu_is_stopped_and_a_share_gets_it(
        local: Standalone, tmp_path: Path) -> None:
    # Night (nothing kept): four whole-GPU jobs take the four GPUs (2 agents x 2). Day keeps one GPU of
    # each agent for share hosts, drain_seconds 3: until then they all run; then, on each agent, the job
    # that lost the fewest GPU-hours (the last started there) is stopped gracefully and requeued, and a
    # waiting share lands on a freed GPU; the requeued jobs wait for the kept GPUs, the others run on.
    api = ApiClient(local.api_url)
    now = time.time()
    night_at = now // 60 * 60
    day_at = night_at + 60 * (2 if now - night_at > 25 else 1)      # the next minute at least 35 s away
    document = {
        "default": {"limit": None, "may_borrow": True}, "unassigned_gpus": 100,
        "profiles": {
            "time_zone": "UTC",
            "profiles": {"day": {"groups": [{"share_gpus": 1}], "drain_seconds": 3},
                         "night": {"groups": [{"share_gpus": 0}]}},
            "schedule": [{"at": cron_at(night_at), "profile": "night"},
                         {"at": cron_at(day_at), "profile": "day"}],
        },
    }
    api.request("PUT", "/v1/tenants", document)
    names: dict[str, str] = {}
    for n in range(4):
        job, _ = api.submit({"name": f"w{n}", "command": polite(tmp_path, f"w{n}"), "gpus": 1, "cpus": 0.1,
                             "mem": 32})
        names[job["id"]] = f"w{n}"
        poll(lambda j=job: state_of(api, j["id"]), lambda s: s == "TASK_RUNNING")   # one after another
    assert time.time() < day_at, "the night ended before the jobs ran: the test is too slow"
    share, _ = api.submit({"name": "day-share", "gpus": 0.5, "command": "sleep 600", "cpus": 0.1, "mem": 32})
    poll(lambda: api.cluster()["profile"]["current"], lambda c: c == "day", timeout=100)
    assert all(api.job(j)["state"] == "RUNNING" for j in names)       # before the deadline: all run
    poll(lambda: state_of(api, share["id"]), lambda s: s == "TASK_RUNNING", timeout=60)
    assert time.time() >= day_at + 3

    jobs = {j: api.job(j) for j in names}
    stopped = [j for j, job in jobs.items() if "profile switch to 'day'" in job["message"]]
    assert len(stopped) == 2, {names[j]: (job["state"], job["message"]) for j, job in jobs.items()}
    agents = {}
    for j in stopped:
        assert jobs[j]["state"] in ("RESTARTING", "PENDING") and jobs[j]["restarts"] == 0
        assert "kept for share hosts" in jobs[j]["message"]
        term = (tmp_path / f"{names[j]}.term").read_text().split()
        done = (tmp_path / f"{names[j]}.done").read_text().split()
        assert float(done[0]) - float(term[0]) >= 1.9                  # SIGTERM seen, grace honoured
    for j, job in jobs.items():
        agents.setdefault(job["tasks"][0]["agent_id"], []).append(j)
    for on_agent in agents.values():                                   # one per agent: the last started
        assert len(on_agent) == 2
        last = max(on_agent, key=lambda j: jobs[j]["started_at"])
        assert [j for j in on_agent if j in stopped] == [last]
    running = [j for j in names if j not in stopped]
    assert all(api.job(j)["state"] == "RUNNING" for j in running)
    assert not any((tmp_path / f"{names[j]}.term").exists() for j in running)
    assert api.job(share["id"])["tasks"][0]["agent_id"] in agents
    for j in stopped:
        reason = poll(lambda j=j: api.job(j).get("wait_reason") or "", lambda r: "kept for gpu shares" in r)
        assert api.job(j)["state"] in ("PENDING", "RESTARTING"), reason
    for j in (*names, share["id"]):
        api.kill(j)
