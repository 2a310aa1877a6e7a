"""What the share host says is actually enforced for a task (its TASK_RUNNING label
`mesos-gpu/enforcement`) is kept in the member's share record, next to the device, and persisted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesos_gpu.api import views
from mesos_gpu.core.records import MemberRecord
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_ENFORCEMENT
from mesos_gpu.core.state import StatusReceived
from tests.scheduler.builders import status
from tests.scheduler.test_shares import HOST, open_host
from tests.scheduler.test_state import Harness

SIMULATED = "simulated (fake NVML): nothing is enforced on a real GPU"


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def running(h: Harness, task_id: str, **labels: str) -> None:
    update = status(task_id, "TASK_RUNNING")
    update["labels"] = {"labels": [{"key": key, "value": value} for key, value in labels.items()]}
    h(StatusReceived(update, h.tick()))


def member(h: Harness) -> MemberRecord:
    return h.job("a").members[next(iter(h.job("a").members))]


def test_the_running_label_says_what_is_enforced_and_is_persisted(h: Harness) -> None:
    open_host(h)
    assert member(h).share["enforcement"] is None  # not known before the share host says
    h.update("a.task-0.0", "TASK_STARTING")
    launched = member(h).share
    running(h, "a.task-0.0", **{LABEL_DEVICE: "GPU-abc", LABEL_ENFORCEMENT: SIMULATED})
    share = member(h).share
    assert (share["device"], share["enforcement"], share["host"]) == ("GPU-abc", SIMULATED, HOST)
    assert launched is not share and launched["enforcement"] is None  # a new dict: the old one is kept
    stored = h.persisted["a"]["members"]["task-0"]["share"]
    assert (stored["device"], stored["enforcement"]) == ("GPU-abc", SIMULATED)


def test_a_running_status_without_the_label_keeps_what_was_said(h: Harness) -> None:
    open_host(h)
    running(h, "a.task-0.0", **{LABEL_DEVICE: "GPU-abc", LABEL_ENFORCEMENT: SIMULATED})
    running(h, "a.task-0.0", **{LABEL_DEVICE: "GPU-abc"})  # e.g. a reconciliation answer
    assert member(h).share["enforcement"] == SIMULATED


def test_the_label_of_a_status_other_than_running_is_not_taken(h: Harness) -> None:
    open_host(h)
    update = status("a.task-0.0", "TASK_STARTING")
    update["labels"] = {"labels": [{"key": LABEL_ENFORCEMENT, "value": SIMULATED}]}
    h(StatusReceived(update, h.tick()))
    assert member(h).share.get("enforcement") is None


def test_the_api_task_view_of_the_job_says_what_is_in_effect(h: Harness) -> None:
    open_host(h)
    running(h, "a.task-0.0", **{LABEL_DEVICE: "GPU-abc", LABEL_ENFORCEMENT: SIMULATED})
    [task] = views.tasks_json(h.job("a").to_dict())
    assert task["enforced"]["in_effect"] == SIMULATED and task["enforced"]["level"] == "capped"
    assert (task["share"]["device"], task["share"]["enforcement"]) == ("GPU-abc", SIMULATED)
