"""The device(s) an exclusive (whole-GPU) task got: its TASK_RUNNING labels `mesos-gpu/device` (the
UUIDs) and `mesos-gpu/device-index` (the indices NVML gives them), which the local agent and the docker
executor send, are kept in the member's record, persisted, shown by the API; a status without them (a
real Mesos agent's own executors send none) leaves the devices unknown: nothing is guessed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_gpu.api import views
from mesos_gpu.core.devicelabels import device_labels, devices_from_labels
from mesos_gpu.core.records import MemberRecord
from mesos_gpu.core.sharing import LABEL_DEVICE, LABEL_DEVICE_INDEX
from mesos_gpu.core.state import StatusReceived
from tests.api.spec import check
from tests.scheduler.builders import offer, single_job, status
from tests.scheduler.test_shares import open_host
from tests.scheduler.test_state import Harness

UUID0, UUID1 = "GPU-5f1c0000-0000-4000-8000-000000000000", "GPU-5f1c0000-0000-4000-8000-000000000001"
TASK = "j.task-0.0"


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    harness.subscribe()
    yield harness


def running(h: Harness, task_id: str, **labels: str) -> None:
    update = status(task_id, "TASK_RUNNING")
    if labels:
        update["labels"] = {"labels": [{"key": key, "value": value} for key, value in labels.items()]}
    h(StatusReceived(update, h.tick()))


def launch(h: Harness, gpus: int = 2) -> MemberRecord:
    h.submit("j", single_job(gpus=gpus))
    h.offers(offer("S1", gpus=2))
    (member,) = h.job("j").members.values()
    assert member.task_id == TASK
    h.update(TASK, "TASK_STARTING")
    return member


@pytest.mark.parametrize(
    ("labels", "devices"),
    [
        ({LABEL_DEVICE: UUID0, LABEL_DEVICE_INDEX: "0"}, [{"index": 0, "uuid": UUID0}]),
        ({LABEL_DEVICE: f"{UUID0},{UUID1}", LABEL_DEVICE_INDEX: "1,0"},
         [{"index": 1, "uuid": UUID0}, {"index": 0, "uuid": UUID1}]),
        ({LABEL_DEVICE: UUID0}, [{"index": None, "uuid": UUID0}]),          # a share host: no index
        ({LABEL_DEVICE_INDEX: "3"}, [{"index": 3, "uuid": None}]),          # no inventory: no UUID
        ({}, None),                                                         # a plain Mesos executor
        ({LABEL_DEVICE: f"{UUID0},{UUID1}", LABEL_DEVICE_INDEX: "0"}, None),  # disagree: nothing guessed
        ({LABEL_DEVICE_INDEX: "x"}, None),
        ({LABEL_DEVICE: ""}, None),
    ],
)  # fmt: skip
def test_devices_from_labels(labels: dict[str, str], devices: list[dict[str, Any]] | None) -> None:
    assert devices_from_labels(labels) == devices


@given(st.lists(st.tuples(st.integers(0, 63), st.text("0123456789abcdef-", min_size=1).map("GPU-".__add__)),
                min_size=1, max_size=8))
def test_the_labels_say_back_the_devices_they_were_made_of(devices: list[tuple[int, str]]) -> None:
    expected = [{"index": index, "uuid": uuid} for index, uuid in devices]
    assert devices_from_labels(device_labels(devices)) == expected


def test_an_exclusive_task_keeps_the_devices_its_running_status_names(h: Harness) -> None:
    member = launch(h)
    assert member.devices is None  # not known before the task runs
    running(h, TASK, **{LABEL_DEVICE: f"{UUID0},{UUID1}", LABEL_DEVICE_INDEX: "0,1"})
    assert member.devices == [{"index": 0, "uuid": UUID0}, {"index": 1, "uuid": UUID1}]
    stored = h.persisted["j"]["members"]["task-0"]
    assert stored["devices"] == member.devices and "share" not in stored
    again = MemberRecord.from_dict(member.key, stored)   # a new leader reads it back
    assert again.devices == member.devices


def test_a_running_status_without_labels_names_no_device(h: Harness) -> None:
    member = launch(h)
    running(h, TASK)   # e.g. the Mesos command executor of a real agent
    assert member.devices is None
    assert "devices" not in h.persisted["j"]["members"]["task-0"]   # records without are as they were
    (task,) = views.tasks_json(h.job("j").to_dict())
    assert task["devices"] is None


def test_a_later_running_status_without_labels_keeps_the_devices(h: Harness) -> None:
    member = launch(h, gpus=1)
    running(h, TASK, **{LABEL_DEVICE: UUID1, LABEL_DEVICE_INDEX: "1"})
    running(h, TASK)   # a reconciliation answer from the master
    assert member.devices == [{"index": 1, "uuid": UUID1}]


def test_labels_of_a_status_other_than_running_are_not_taken(h: Harness) -> None:
    member = launch(h, gpus=1)
    update = status(TASK, "TASK_STAGING")
    update["labels"] = {"labels": [{"key": LABEL_DEVICE, "value": UUID0}]}
    h(StatusReceived(update, h.tick()))
    assert member.devices is None


def test_the_api_shows_the_devices_of_an_exclusive_task(h: Harness) -> None:
    launch(h, gpus=1)
    running(h, TASK, **{LABEL_DEVICE: UUID1, LABEL_DEVICE_INDEX: "1"})
    job = views.job_json(h.job("j").to_dict())
    check("Job", job)   # as openapi.json documents it
    (task,) = job["tasks"]
    assert task["devices"] == [{"index": 1, "uuid": UUID1}] and task["share"] is None


def test_a_share_shows_its_device_too(h: Harness) -> None:
    open_host(h)
    h.update("a.task-0.0", "TASK_STARTING")
    running(h, "a.task-0.0", **{LABEL_DEVICE: UUID0})
    member = next(iter(h.job("a").members.values()))
    assert member.devices is None and member.share is not None and member.share["device"] == UUID0
    (task,) = views.tasks_json(h.job("a").to_dict())
    check("Task", task)
    assert task["devices"] == [{"index": None, "uuid": UUID0}]
