"""Review 9's preemption findings, each with a test that failed on the code before (bde103e):

1. victims that free nothing (shares on a host another share keeps) were pruned at most `max_prunes` at a
   time, so with more of them useless shares were killed along with the useful victim: they are now all
   left out in one plan (`_useful` is checked against `FreedGpus` in test_useful_freed.py);
2. after a failover, a claim's settle wait did not include the linger of the share hosts its victims
   closed (`settle_extra`), so it stopped a second victim while the closed host still held its GPU.
"""

from __future__ import annotations

from mesos_gpu.core.commands import KillTask
from mesos_gpu.core.events import Subscribed
from mesos_gpu.core.model import JobState
from tests.scheduler.builders import offer, share_job, single_job
from tests.scheduler.test_state import of_type
from tests.tenancy.test_preempt import preempting, run, task_of
from tests.tenancy.test_preempt_gaps import recovered
from tests.tenancy.test_state import Tenanted


def shares_beside_a_whole_gpu_job(hosts: int) -> Tenanted:
    """w (1 whole GPU, run long) and, on each of `hosts` agents, a cheap low-priority share s<i> beside a
    high-priority share t<i> that keeps the host (so s<i> frees no GPU)."""
    h = preempting(None)
    h.submit("w", single_job("w", gpus=1, priority=0))
    assert h.launched(h.offers(offer("W", gpus=1))) == ["w"]
    run(h, "w", "W")
    h.now += 1000       # w has run long: each s<i> has fewer GPU-hours to lose, so is ranked first
    for i in range(1, hosts + 1):
        h.submit(f"s{i}", share_job(f"s{i}", gpus=0.5, priority=0))
        h.submit(f"t{i}", share_job(f"t{i}", gpus=0.5, priority=20))
        assert h.launched(h.offers(offer(f"S{i}", gpus=1, gpu_memory=16000))) == [f"s{i}", f"t{i}"]
        run(h, f"s{i}", f"S{i}")
        run(h, f"t{i}", f"S{i}")
    return h


def test_shares_that_free_no_gpu_are_never_killed_however_many_there_are() -> None:
    for hosts in (1, 4, 6, 9):      # more than `max_prunes` (4) useless shares failed before
        h = shares_beside_a_whole_gpu_job(hosts)
        h.submit("big", single_job("big", gpus=1, priority=10))
        kills = of_type(h.offers(offer("W", gpus=0)), KillTask)
        assert [k.task_id for k in kills] == [task_of(h, "w")], hosts
        assert all(h.job(f"s{i}").state is JobState.RUNNING for i in range(1, hosts + 1))


def share_preempted_for_big() -> Tenanted:
    """w runs whole on S2; s1 (a share, alone on its host on S1) is preempted for `big` (priority 10): its
    host closes and lingers at least 30 s."""
    h = preempting(None, grace=30.0)
    h.submit("w", single_job("w", gpus=1, priority=0))
    assert h.launched(h.offers(offer("S2", gpus=1))) == ["w"]
    run(h, "w", "S2")
    h.now += 1000
    h.submit("s1", share_job("s1", gpus=0.5, priority=0))
    assert h.launched(h.offers(offer("S1", gpus=1, gpu_memory=16000))) == ["s1"]
    run(h, "s1")
    h.submit("big", single_job("big", gpus=1, priority=10))
    kills = of_type(h.offers(offer("S1", gpus=0, gpu_memory=16000)), KillTask)
    assert [k.task_id for k in kills] == [task_of(h, "s1")]
    (host,) = h.state.share_hosts.values()
    assert host.closing and host.linger_seconds >= 30    # the cycles below span 30 s
    return h


def closed_host_claim(failover: bool) -> list[KillTask]:
    """s1 (a share, alone on its host) is preempted for `big`; its host closes and lingers. Then offer
    cycles over ~30 s, well within the host's linger (its GPU not offered again yet): the kills sent."""
    h = share_preempted_for_big()
    if failover:
        h = recovered(h, None)
        h(Subscribed("F", h.tick()))
        h.update(task_of(h, "s1"), "TASK_RUNNING")     # reconciliation: still in its grace
    h.update(task_of(h, "s1"), "TASK_KILLED")
    out: list[KillTask] = []
    for _ in range(6):
        h.now += 5
        out += of_type(h.offers(offer("S1", gpus=0, gpu_memory=16000), offer("S2", gpus=0)), KillTask)
    assert h.job("w").state is JobState.RUNNING
    return out


def test_a_claim_waits_for_its_closed_hosts_linger_before_another_victim_also_after_a_failover() -> None:
    assert closed_host_claim(failover=False) == []
    assert closed_host_claim(failover=True) == []
