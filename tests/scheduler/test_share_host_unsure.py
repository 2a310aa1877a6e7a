"""A share host known across a (re)subscription (`ShareHostRecord.unsure`) takes no new share until its
executor proves it runs by an update made after the subscription, and none once it empties before that.

The long soak of 2026-12-05 (seed 871587490) still had 6 share launches refused by the master (TASK_ERROR
"required by task and its executor is more than available") on 3 hosts, each the same way: the leader
that opened the host was killed; the host ran its task, lingered empty and exited while no leader was
subscribed (the master tells an executor's end only to a subscribed framework, once); the next leader
rebuilt the host from the records, the master's reconciliation answer (TASK_STARTING: its agent still
held the unacknowledged updates) confirmed it, and the agent's retried RUNNING and FINISHED arrived a few
ms later: the host looked freshly emptied, so the next cycle placed shares on it. The scheduler hears of
such a host's end late, so its linger clock is unknown: once empty, it takes no new share (it exits by
itself at its linger). The same after the driver subscribes again within a term.

The run after that fix still had 21 refused (6 hosts): hosts that looked busy, holding a member whose
task had ended long before while its last update waited at the agent, so the master answered RUNNING
for it; that answer confirmed the host. The master's last word is no proof: only an update the host's
executor made after the subscription is (agents retry an update with the time it was first made)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.core.sharehosts import fresh
from mesos_gpu.core.sharing import LABEL_SHARE_HOST
from mesos_gpu.core.state import Disconnected, StatusReceived
from tests.scheduler.builders import offer, share_job, status
from tests.scheduler.test_share_host_gone import accepting, recovered
from tests.scheduler.test_shares import HOST, labels, launched, open_host, run
from tests.scheduler.test_state import Harness

RECONCILED = {"with_uuid": False, "reason": "REASON_RECONCILIATION"}


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def executor_update(h: Harness, task_id: str, state: str, made_at: float) -> None:
    """An update of `task_id`'s executor made at `made_at` (received now)."""
    h(StatusReceived({**status(task_id, state), "timestamp": made_at}, h.tick()))


def placed_on(h: Harness, job_id: str) -> str | None:
    """Submit share job `job_id` and offer S1 without a free GPU: the host it went to, if any."""
    h.submit(job_id, share_job(job_id))
    infos = launched(h.offers(offer("S1", gpus=0, gpu_memory=16384)))
    return labels(infos[0])[LABEL_SHARE_HOST] if infos else None


def test_a_recovered_host_whose_task_end_comes_late_takes_no_new_share(h: Harness) -> None:
    open_host(h)            # the leader that opened it is killed before any update
    fresh = recovered(h)
    fresh.update("a.task-0.0", "TASK_STARTING", **RECONCILED)     # the master's (stale) word: no proof
    assert accepting(fresh) == [False]
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):     # the agent's retried updates
        executor_update(fresh, "a.task-0.0", state, made_at=2.0)       # (made before the failover)
    assert accepting(fresh) == [False]     # its linger may be over: it may have exited
    assert fresh.state.share_hosts[HOST].closing
    assert placed_on(fresh, "b") is None
    (info,) = launched(fresh.offers(offer("S1", gpus=1, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"    # a new host


def test_a_host_that_empties_after_the_driver_subscribed_again_takes_no_new_share(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h(Disconnected(h.tick()))
    h.subscribe()                       # its end (and its executor's) may have been told meanwhile
    executor_update(h, "a.task-0.0", "TASK_FINISHED", made_at=h.now - 5)     # retried after
    assert accepting(h) == [False]
    assert placed_on(h, "b") is None


def test_a_host_that_empties_within_its_subscription_still_takes_shares_while_it_lingers(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    assert accepting(h) == [True]
    assert placed_on(h, "b") == HOST


def test_a_busy_host_known_across_a_subscription_takes_shares_once_its_executor_proves_it_runs(
        h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h(Disconnected(h.tick()))
    h.subscribe()
    subscribed = h.now
    h.update("a.task-0.0", "TASK_RUNNING", **RECONCILED)     # the master's last word: maybe old
    assert placed_on(h, "b") is None
    executor_update(h, "a.task-0.0", "TASK_RUNNING", made_at=subscribed - 0.5)     # made before
    assert accepting(h) == [False]
    executor_update(h, "a.task-0.0", "TASK_RUNNING", made_at=subscribed)           # made since
    assert accepting(h) == [True]
    (info,) = launched(h.offers(offer("S1", gpus=0, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == HOST


def test_a_recovered_host_that_looks_busy_on_the_masters_word_takes_no_share(h: Harness) -> None:
    """21 refused share launches of the 2026-12-05 soak (b2c58f9): a member ended long before, its last
    update held at the agent, so the master answered TASK_RUNNING; the host's executor had exited."""
    open_host(h)
    run(h, "a.task-0.0")
    fresh = recovered(h)
    fresh.update("a.task-0.0", "TASK_RUNNING", **RECONCILED)
    assert placed_on(fresh, "b") is None
    (info,) = launched(fresh.offers(offer("S1", gpus=1, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"     # a new host, on a free GPU


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, True),                                                   # the executor's, made at the subscription
    ({"timestamp": 99.9}, False),                                 # made before it (retried since)
    ({"source": "SOURCE_AGENT"}, False),                          # the agent's own (e.g. executor gone)
    ({"reason": "REASON_RECONCILIATION"}, False),                 # the master's last word
    ({"timestamp": None}, False),
], ids=["executor-since", "made-before", "agent", "reconciliation", "no-time"])
def test_which_update_proves_a_host_runs(changes: dict[str, object], expected: bool) -> None:
    update = {**status("a.task-0.0", "TASK_RUNNING"), "timestamp": 100.0, **changes}
    assert fresh(update, 100.0) is expected
    assert fresh({k: v for k, v in update.items() if k != "uuid"}, 100.0) is False
    assert fresh(update, None) is False


def test_an_offer_naming_the_host_among_its_agents_executors_proves_it_runs(h: Harness) -> None:
    """The master's view now (`Offer.executor_ids`): the proof needed on the very offer a share would use,
    also for a host whose long tasks send no update (a review's finding: such hosts stayed unsure)."""
    open_host(h)
    run(h, "a.task-0.0")
    fresh = recovered(h)
    fresh.submit("b", share_job("b"))
    other = {**offer("S1", gpus=0, gpu_memory=16384), "executor_ids": [{"value": "sharehost.x.task-0.0"}]}
    assert launched(fresh.offers(other)) == []          # another executor of ours: no proof
    named = {**offer("S1", gpus=0, gpu_memory=16384), "executor_ids": [{"value": HOST}]}
    (info,) = launched(fresh.offers(named))
    assert labels(info)[LABEL_SHARE_HOST] == HOST


def test_an_update_of_the_second_the_subscription_fell_in_counts() -> None:
    """pymesos's executor driver stamps whole seconds."""
    update = {**status("a.task-0.0", "TASK_RUNNING"), "timestamp": 100}
    assert fresh(update, 100.7)
    assert not fresh(update, 101.0)
