"""What the executor reads from a TaskInfo (isolator.taskinputs, pure): the payload, the resources,
the command environment, the shutdown grace period and the container name."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from isolator.taskinputs import (
    Payload,
    PayloadError,
    TaskResources,
    command_environment,
    container_name,
    decode_payload,
    shutdown_grace,
    task_payload,
    task_resources,
)


def b64(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_the_schedulers_payload_decodes():
    payload = decode_payload(b64({"image": "img:1", "command": "echo hi", "uris": [{"value": "http://x/y"}]}))
    assert payload == Payload(image="img:1", command="echo hi", uris=({"value": "http://x/y"},))
    argv = decode_payload(b64({"image": "img", "command": ["/bin/echo", "a b"], "network": "none"}))
    assert argv.command == ("/bin/echo", "a b") and argv.network == "none" and argv.uris == ()
    assert decode_payload(b64({"image": "img", "command": None})).command is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "no payload: neither TaskInfo.data nor ExecutorInfo.data is set"),
        ("", "no payload: neither TaskInfo.data nor ExecutorInfo.data is set"),
        ("%%%", "the payload is not base64"),
        (base64.b64encode(b"{nope").decode(), "the payload is not JSON"),
        (b64(["image"]), "the payload must be a JSON object"),
        (b64({"command": "x"}), "the payload names no image"),
        (b64({"image": " "}), "the payload names no image"),
        (b64({"image": "i", "command": 3}), "the payload's command must be a string"),
        (b64({"image": "i", "uris": "http://x"}), "the payload's uris must be a list"),
        (b64({"image": "i", "network": ""}), "the payload's network must be a non-empty string"),
    ],
)
def test_bad_payloads_say_what_is_wrong(data, message):
    with pytest.raises(PayloadError) as caught:
        decode_payload(data)
    assert str(caught.value).startswith(message)


def test_task_data_wins_over_executor_data():
    task = {"data": b64({"image": "from-task"}), "executor": {"data": b64({"image": "from-executor"})}}
    assert task_payload(task, None).image == "from-task"
    assert (
        task_payload({"executor": {"data": b64({"image": "from-executor"})}}, None).image == "from-executor"
    )
    assert task_payload({}, {"data": b64({"image": "registered"})}).image == "registered"
    with pytest.raises(PayloadError):
        task_payload({}, None)


def scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def test_task_resources():
    resources = [scalar("cpus", 1.5), scalar("mem", 512.7), scalar("gpus", 2.0), scalar("disk", 10)]
    assert task_resources(resources) == TaskResources(cpus=1.5, mem_mb=512, gpus=2)
    assert task_resources([scalar("cpus", 0.5), scalar("cpus", 0.25)]) == TaskResources(cpus=0.75)
    assert task_resources(None) == TaskResources()
    with pytest.raises(PayloadError, match="must be an unsigned integer"):
        task_resources([scalar("gpus", 0.5)])


def test_command_environment_later_commands_win():
    executor = {"environment": {"variables": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}}
    task = {"environment": {"variables": [{"name": "B", "value": "3"}, {"name": "S", "type": "SECRET"}]}}
    assert command_environment(executor, task, None) == {"A": "1", "B": "3"}


def test_the_shutdown_grace_period_comes_from_the_mesos_environment():
    assert shutdown_grace({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs"}) == 3.0
    assert shutdown_grace({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "500ms"}) == 0.5
    assert shutdown_grace({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "-2secs"}) == 0.0
    assert shutdown_grace({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5s"}) == 5.0  # not Duration text
    assert shutdown_grace({}) == 5.0


def test_container_names_are_valid_docker_names():
    name = container_name("job-1.worker-0.2/x y")
    assert (
        name.startswith("mesos-gpu-job-1.worker-0.2_x_y-")
        and len(name) == len("mesos-gpu-job-1.worker-0.2_x_y-") + 8
    )


def test_task_resources_sum_over_roles_and_refuse_malformed_lists():
    reserved = {**scalar("cpus", 1.0), "reservations": [{"type": "STATIC", "role": "gpu"}], "role": "gpu"}
    assert task_resources([reserved, scalar("cpus", 0.5), scalar("gpus", 1)]) == TaskResources(
        cpus=1.5, gpus=1
    )
    with pytest.raises(PayloadError, match="the task's resources are malformed"):
        task_resources([{"name": "cpus", "type": "SCALAR"}])
    with pytest.raises(PayloadError, match="the task's resources are malformed"):
        task_resources([scalar("gpus", -1)])
