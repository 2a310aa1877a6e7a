"""The executor's status updates (isolator.statusupdates): the TaskStatus JSON, retries while the agent
is unreachable, and no update after a terminal one, for every terminal state Mesos has (the executor's
own list once knew only five of them)."""

from __future__ import annotations

import threading

import pytest

from isolator.statusupdates import StatusUpdates, task_status
from mesos_gpu.core.wire import TERMINAL_TASK_STATES


class RecordingDriver:
    """Stands in for pymesos.MesosExecutorDriver: records the updates, refuses the first `refuse`."""

    def __init__(self, refuse: int = 0, aborted: bool = False) -> None:
        self.updates: list[dict] = []
        self.refuse = refuse
        self.aborted = aborted

    def sendStatusUpdate(self, status: dict) -> None:
        if self.refuse > 0:
            self.refuse -= 1
            raise RuntimeError("Not connected yet")
        self.updates.append(status)

    def states(self) -> list[str]:
        return [u["state"] for u in self.updates]


def test_the_task_status_json():
    assert task_status("t", "TASK_RUNNING") == {"task_id": {"value": "t"}, "state": "TASK_RUNNING"}
    assert task_status(
        "t", "TASK_FAILED", "Command exited with status 2", "REASON_X", {"exit_code": "2"}
    ) == {
        "task_id": {"value": "t"},
        "state": "TASK_FAILED",
        "message": "Command exited with status 2",
        "reason": "REASON_X",
        "labels": {"labels": [{"key": "exit_code", "value": "2"}]},
    }


@pytest.mark.parametrize("terminal", sorted(TERMINAL_TASK_STATES))
def test_nothing_is_sent_after_any_terminal_state(terminal):
    driver, updates = RecordingDriver(), StatusUpdates(retry_seconds=1.0)
    assert updates.send(driver, "t", "TASK_RUNNING")
    assert updates.send(driver, "t", terminal)
    assert not updates.send(driver, "t", "TASK_KILLING")
    assert not updates.send(driver, "t", "TASK_RUNNING")
    assert driver.states() == ["TASK_RUNNING", terminal]
    assert updates.last_state("t") == terminal
    assert updates.send(driver, "other", "TASK_RUNNING")  # other tasks are not affected


@pytest.mark.parametrize("state", ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE",
                                   "TASK_UNKNOWN"])  # fmt: skip
def test_non_terminal_states_let_later_updates_through(state):
    driver, updates = RecordingDriver(), StatusUpdates(retry_seconds=1.0)
    assert updates.send(driver, "t", state)
    assert updates.send(driver, "t", "TASK_FINISHED")
    assert driver.states() == [state, "TASK_FINISHED"]


def test_a_task_launched_again_under_its_id_starts_afresh():
    driver, updates = RecordingDriver(), StatusUpdates(retry_seconds=1.0)
    updates.send(driver, "t", "TASK_FAILED")
    updates.restart("t")
    assert updates.last_state("t") is None
    assert updates.send(driver, "t", "TASK_STARTING")
    assert driver.states() == ["TASK_FAILED", "TASK_STARTING"]


def test_refused_updates_are_retried_until_the_agent_takes_them():
    driver, updates = RecordingDriver(refuse=2), StatusUpdates(retry_seconds=5.0)
    assert updates.send(driver, "t", "TASK_RUNNING", "up")
    assert driver.updates == [{"task_id": {"value": "t"}, "state": "TASK_RUNNING", "message": "up"}]


def test_an_aborted_driver_is_not_retried():
    driver, updates = RecordingDriver(refuse=1, aborted=True), StatusUpdates(retry_seconds=30.0)
    assert not updates.send(driver, "t", "TASK_RUNNING")
    assert driver.updates == []


def test_a_killing_racing_the_terminal_update_is_sent_before_it_or_not_at_all():
    for _ in range(50):
        driver, updates = RecordingDriver(), StatusUpdates(retry_seconds=1.0)
        threads = [
            threading.Thread(target=updates.send, args=(driver, "t", "TASK_KILLING")),
            threading.Thread(target=updates.send, args=(driver, "t", "TASK_KILLED")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert driver.states() in (["TASK_KILLING", "TASK_KILLED"], ["TASK_KILLED"])
