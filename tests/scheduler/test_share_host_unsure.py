"""A share host known across a (re)subscription takes no new share once it empties (`ShareHostRecord.unsure`).

The long soak of 2026-12-05 (seed 871587490) still had 6 share launches refused by the master (TASK_ERROR
"required by task and its executor is more than available") on 3 hosts, each the same way: the leader
that opened the host was killed; the host ran its task, lingered empty and exited while no leader was
subscribed (the master tells an executor's end only to a subscribed framework, once); the next leader
rebuilt the host from the records, the master's reconciliation answer (TASK_STARTING: its agent still
held the unacknowledged updates) confirmed it, and the agent's retried RUNNING and FINISHED arrived a few
ms later: the host looked freshly emptied, so the next cycle placed shares on it. The scheduler hears of
such a host's end late, so its linger clock is unknown: once empty, it takes no new share (it exits by
itself at its linger). The same after the driver subscribes again within a term."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.core.sharing import LABEL_SHARE_HOST
from mesos_gpu.core.state import Disconnected
from tests.scheduler.builders import offer, share_job
from tests.scheduler.test_share_host_gone import accepting, recovered
from tests.scheduler.test_shares import HOST, labels, launched, open_host, run
from tests.scheduler.test_state import Harness

RECONCILED = {"with_uuid": False, "reason": "REASON_RECONCILIATION"}


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def placed_on(h: Harness, job_id: str) -> str | None:
    """Submit share job `job_id` and offer S1 without a free GPU: the host it went to, if any."""
    h.submit(job_id, share_job(job_id))
    infos = launched(h.offers(offer("S1", gpus=0, gpu_memory=16384)))
    return labels(infos[0])[LABEL_SHARE_HOST] if infos else None


def test_a_recovered_host_whose_task_end_comes_late_takes_no_new_share(h: Harness) -> None:
    open_host(h)            # the leader that opened it is killed before any update
    fresh = recovered(h)
    fresh.update("a.task-0.0", "TASK_STARTING", **RECONCILED)     # the master's (stale) word: confirmed
    assert accepting(fresh) == [True]
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):     # the agent's retried updates
        fresh.update("a.task-0.0", state)
    assert accepting(fresh) == [False]     # its linger may be over: it may have exited
    assert placed_on(fresh, "b") is None
    (info,) = launched(fresh.offers(offer("S1", gpus=1, gpu_memory=16384)))
    assert labels(info)[LABEL_SHARE_HOST] == "sharehost.b.task-0.0"    # a new host


def test_a_host_that_empties_after_the_driver_subscribed_again_takes_no_new_share(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h(Disconnected(h.tick()))
    h.subscribe()                       # its end (and its executor's) may have been told meanwhile
    h.update("a.task-0.0", "TASK_FINISHED")
    assert accepting(h) == [False]
    assert placed_on(h, "b") is None


def test_a_host_that_empties_within_its_subscription_still_takes_shares_while_it_lingers(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h.update("a.task-0.0", "TASK_FINISHED")
    assert accepting(h) == [True]
    assert placed_on(h, "b") == HOST


def test_a_busy_host_known_across_a_subscription_still_takes_shares_beside_its_tasks(h: Harness) -> None:
    open_host(h)
    run(h, "a.task-0.0")
    h(Disconnected(h.tick()))
    h.subscribe()
    assert placed_on(h, "b") == HOST     # running: its executor is there
