"""Preemption on the live local cluster (real ZooKeeper, local master and agents, pymesos, the API): team-b
borrows team-a's idle GPUs, team-a submits within its guarantee, one of team-b's jobs is preempted
gracefully (its task sees SIGTERM and finishes its trap well inside the grace: no SIGKILL), team-a's job
runs, and the victim, requeued without counting as a restart, runs again once room returns.
Preemption is switched on as a user does, with MESOS_GPU_PREEMPTION (grace from
MESOS_GPU_PREEMPTION_GRACE_SECONDS, sent on each victim's KILL as its kill_policy)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone

pytestmark = [pytest.mark.slow, pytest.mark.zookeeper]


@pytest.fixture
def local(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Standalone]:
    monkeypatch.setenv("MESOS_GPU_PREEMPTION", "true")   # read by `mesos-gpu local` as by the scheduler
    monkeypatch.setenv("MESOS_GPU_PREEMPTION_GRACE_SECONDS", "20")
    stack = Standalone(zk_hosts=zk_hosts, framework_name=f"preempt-{uuid.uuid4().hex[:8]}",
                       workdir=tmp_path_factory.mktemp("preempt"), tick_seconds=0.2,
                       cluster_options={"allocation_interval": 0.2})
    with stack:
        yield stack


def poll(what: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if until(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def polite(marks: Path, name: str, then: str = "sleep 600 & wait") -> str:
    """A command that, on SIGTERM, notes the time, takes 2 s to "checkpoint", notes again and exits 143."""
    term, done = marks / f"{name}.term", marks / f"{name}.done"
    return (f"trap 'date +%s.%N >> {term}; sleep 2; date +%s.%N >> {done}; exit 143' TERM; {then}")


def test_the_owner_reclaims_lent_gpus_gracefully_and_the_borrower_runs_again(local: Standalone,
                                                                            tmp_path: Path) -> None:
    api = ApiClient(local.api_url)
    api.request("PUT", "/v1/tenants", {"tenants": {"team-a": {"quota": 2}, "team-b": {"quota": 2}}})
    borrowers: list[str] = []
    names: dict[str, str] = {}
    for name in ("b1", "b2"):      # 2 agents x 2 GPUs: team-b takes all 4 (2 of them team-a's)
        job, _ = api.submit({"name": name, "command": polite(tmp_path, name), "gpus": 2, "cpus": 0.1,
                             "mem": 32, "tenant": "team-b"})
        borrowers.append(job["id"])
        names[job["id"]] = name
        poll(lambda j=job: api.job(j["id"])["state"], lambda s: s == "RUNNING")
    owner, _ = api.submit({"name": "a1", "command": "sleep 4", "gpus": 2, "cpus": 0.1, "mem": 32,
                           "tenant": "team-a"})
    victim = poll(lambda: [j for j in borrowers if api.job(j)["message"].startswith("preempted by job")],
                  bool)
    assert len(victim) == 1           # one job frees enough: the other borrower keeps running
    victim_id = victim[0]
    assert f"preempted by job {owner['id']}" in api.job(victim_id)["message"]
    term_file, done_file = tmp_path / f"{names[victim_id]}.term", tmp_path / f"{names[victim_id]}.done"
    poll(lambda: done_file.exists() and done_file.read_text().strip(), bool)   # created, then written
    other = next(name for job_id, name in names.items() if job_id != victim_id)
    assert not (tmp_path / f"{other}.term").exists()     # the other borrower never saw a SIGTERM
    # SIGTERM seen, and the 2 s "checkpoint" completed: no SIGKILL before the grace
    assert float(done_file.read_text().split()[0]) - float(term_file.read_text().split()[0]) >= 1.9
    poll(lambda: api.job(owner["id"])["state"], lambda s: s in ("RUNNING", "SUCCEEDED"))
    # room returns when the owner's job ends: the victim runs again, not counted as a restart
    poll(lambda: api.job(owner["id"])["state"], lambda s: s == "SUCCEEDED")
    again = poll(lambda: api.job(victim_id), lambda j: j["state"] == "RUNNING" and j["attempt"] >= 1)
    assert again["restarts"] == 0
    for job_id in borrowers:
        api.kill(job_id)


def test_a_tenant_at_its_quota_preempts_its_own_lower_priority_job(local: Standalone, tmp_path: Path) -> None:
    """Issue 14: a job its tenant's quota holds (team-a may not borrow: its 2 GPUs are in use by its own
    lower-priority job, while team-b's 2 GPUs sit idle) stops that job gracefully and runs; the victim
    waits for the quota (not for the idle GPUs it may not borrow) and runs again once the claim ended."""
    api = ApiClient(local.api_url)
    api.request("PUT", "/v1/tenants", {"tenants": {"team-a": {"quota": 2, "may_borrow": False},
                                                   "team-b": {"quota": 2}}})
    low, _ = api.submit({"name": "low", "command": polite(tmp_path, "low"), "gpus": 2, "cpus": 0.1,
                         "mem": 32, "tenant": "team-a", "priority": 0})
    poll(lambda: api.job(low["id"])["state"], lambda s: s == "RUNNING")
    high, _ = api.submit({"name": "high", "command": "sleep 4", "gpus": 2, "cpus": 0.1, "mem": 32,
                          "tenant": "team-a", "priority": 10})
    message = poll(lambda: api.job(low["id"])["message"], lambda m: m.startswith("preempted by job"))
    assert f"preempted by job {high['id']} (team-a is at its quota or limit; priority 10 > 0" in message
    term_file, done_file = tmp_path / "low.term", tmp_path / "low.done"
    poll(lambda: done_file.exists() and done_file.read_text().strip(), bool)   # created, then written
    assert float(done_file.read_text().split()[0]) - float(term_file.read_text().split()[0]) >= 1.9
    poll(lambda: api.job(high["id"])["state"], lambda s: s == "SUCCEEDED")
    again = poll(lambda: api.job(low["id"]), lambda j: j["state"] == "RUNNING" and j["attempt"] >= 1)
    assert again["restarts"] == 0
    api.kill(low["id"])


@pytest.fixture
def lingering(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Standalone]:
    """The local cluster with preemption on and share hosts that exit 8 s after their last share ended (an
    empty host takes new shares for the first 3 s of it: `LINGER_MARGIN_SECONDS`)."""
    monkeypatch.setenv("MESOS_GPU_PREEMPTION", "true")
    monkeypatch.setenv("MESOS_GPU_PREEMPTION_GRACE_SECONDS", "20")
    stack = Standalone(zk_hosts=zk_hosts, framework_name=f"preempt-{uuid.uuid4().hex[:8]}",
                       workdir=tmp_path_factory.mktemp("preempt"), tick_seconds=0.2, share_linger_seconds=8,
                       cluster_options={"allocation_interval": 0.2})
    with stack:
        yield stack


def test_a_gpu_share_job_is_preempted_and_its_hosts_gpu_goes_to_the_whole_gpu_job(lingering: Standalone,
                                                                                 tmp_path: Path) -> None:
    """Issue 14: every GPU in use (a 0.5 share on one share host, higher-priority whole-GPU jobs on the other
    three), a whole-GPU job of priority 10 stops the share job (priority 0) gracefully; the share host, its
    last share gone, takes no new share and exits, and its GPU goes to the waiting job."""
    api = ApiClient(lingering.api_url)
    small = {"cpus": 0.1, "mem": 32}
    share, _ = api.submit({"name": "share", "command": polite(tmp_path, "share"), "gpus": 0.5, "priority": 0,
                           **small})
    poll(lambda: api.job(share["id"])["state"], lambda s: s == "RUNNING")
    fillers = []
    for name, gpus in (("pair", 2), ("single", 1)):     # the other agent's two GPUs, then the share's agent's
        job, _ = api.submit({"name": name, "command": "sleep 600", "gpus": gpus, "priority": 20, **small})
        poll(lambda j=job: api.job(j["id"])["state"], lambda s: s == "RUNNING")
        fillers.append(job)
    claim, _ = api.submit({"name": "claim", "command": "sleep 600", "gpus": 1, "priority": 10, **small})
    message = poll(lambda: api.job(share["id"])["message"], lambda m: m.startswith("preempted by job"))
    assert f"preempted by job {claim['id']} (priority 10 > 0)" in message
    term_file, done_file = tmp_path / "share.term", tmp_path / "share.done"
    poll(lambda: done_file.exists() and done_file.read_text().strip(), bool)   # created, then written
    assert float(done_file.read_text().split()[0]) - float(term_file.read_text().split()[0]) >= 1.9
    poll(lambda: api.job(claim["id"])["state"], lambda s: s == "RUNNING", timeout=60)
    # the fillers (higher priority) were never touched; the share waits for a GPU, not counted as a restart
    assert all(api.job(job["id"])["state"] == "RUNNING" for job in fillers)
    again = api.job(share["id"])
    assert again["state"] == "RESTARTING" and again["restarts"] == 0
    for job in (claim, share, *fillers):
        api.kill(job["id"])
