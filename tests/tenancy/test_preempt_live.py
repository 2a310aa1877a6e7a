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
    poll(done_file.exists, bool)
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
