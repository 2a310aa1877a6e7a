"""`Leadership`: the is-leader flag and ordered callbacks shared by both elections."""

from __future__ import annotations

import threading

import pytest

from mesos_gpu.store.election import Leadership
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


def recording() -> tuple[list[str], Leadership]:
    events: list[str] = []
    leadership = Leadership("me:1", lambda: events.append("elected"), lambda r: events.append(f"lost {r}"))
    return events, leadership


def test_elected_and_lost_pair_up_whatever_the_order_of_calls() -> None:
    events, leadership = recording()
    assert not leadership.is_leader
    assert not leadership.lost("nothing to lose")
    assert leadership.elected()
    assert leadership.is_leader
    assert not leadership.elected()
    assert leadership.lost("suspended")
    assert not leadership.lost("again")
    assert leadership.elected()
    leadership.close()
    assert events == ["elected", "lost suspended", "elected", "lost resigned"]
    assert not leadership.is_leader
    assert not leadership.elected()  # closed: never again
    leadership.close()


def test_callbacks_run_in_order_on_their_own_thread() -> None:
    threads: set[str] = set()
    events: list[str] = []

    def on_elected() -> None:
        threads.add(threading.current_thread().name)
        events.append("elected")

    def on_lost(reason: str) -> None:
        threads.add(threading.current_thread().name)
        events.append(reason)

    leadership = Leadership("me:1", on_elected, on_lost)
    for index in range(50):
        leadership.elected()
        leadership.lost(str(index))
    leadership.close()
    assert events == [item for index in range(50) for item in ("elected", str(index))]
    assert threads == {"leader-callbacks-me:1"}


def test_a_raising_callback_is_logged_and_the_next_one_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []

    def on_elected() -> None:
        raise RuntimeError("boom")

    leadership = Leadership("me:1", on_elected, events.append)
    leadership.elected()
    leadership.lost("suspended")
    leadership.close()
    assert events == ["suspended"]
    assert "callback of me:1 raised" in caplog.text


def test_close_from_a_callback_does_not_deadlock() -> None:
    done = threading.Event()
    holder: list[Leadership] = []

    def on_lost(reason: str) -> None:
        holder[0].close()
        done.set()

    leadership = Leadership("me:1", lambda: None, on_lost)
    holder.append(leadership)
    leadership.elected()
    leadership.lost("suspended")
    wait_until(done.is_set, what="the callback to close")
    leadership.close()
