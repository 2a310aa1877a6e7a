"""The docker executor's side of a job's secrets and volumes: SECRET variables come from its own
environment (the agent resolved them), the payload's Mesos volumes become bind mounts with their mode
and named volumes (created with their driver), and what it cannot mount fails the task's launch."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from isolator.containers import ContainerSpec, GpuAccess, create_arguments
from isolator.taskinputs import PayloadError, VolumeError, command_environment, decode_payload, volume_mounts

MOUNT = "/mnt/mesos/sandbox"


def test_secret_variables_come_from_the_executor_environment_only() -> None:
    command = {
        "environment": {
            "variables": [
                {"name": "A", "value": "1"},
                {"name": "S", "type": "SECRET", "secret": {"type": "REFERENCE", "reference": {"name": "db"}}},
                {
                    "name": "UNRESOLVED",
                    "type": "SECRET",
                    "secret": {"type": "REFERENCE", "reference": {"name": "x"}},
                },
            ]
        }
    }
    assert command_environment(command, resolved={"S": "value", "OTHER": "o"}) == {"A": "1", "S": "value"}
    assert command_environment(command) == {"A": "1"}


def test_volumes_become_mounts_and_named_volumes() -> None:
    volumes = [
        {
            "container_path": "data",
            "mode": "RO",
            "source": {"type": "HOST_PATH", "host_path": {"path": "/srv/d"}},
        },
        {
            "container_path": "/abs",
            "mode": "RW",
            "source": {"type": "HOST_PATH", "host_path": {"path": "/srv/e"}},
        },
        {
            "container_path": "/cache",
            "mode": "RW",
            "source": {
                "type": "DOCKER_VOLUME",
                "docker_volume": {
                    "driver": "rexray/ebs",
                    "name": "cache",
                    "driver_options": {"parameter": [{"key": "size", "value": "1"}]},
                },
            },
        },
    ]
    mounts, named = volume_mounts(volumes, MOUNT)
    assert mounts == [("/srv/d", f"{MOUNT}/data", "ro"), ("/srv/e", "/abs", "rw"), ("cache", "/cache", "rw")]
    assert named == [("cache", "rexray/ebs", {"size": "1"})]
    kwargs = create_arguments(
        ContainerSpec(image="img", sandbox="/sb", mounts=mounts), GpuAccess(), lambda _: []
    )
    assert kwargs["volumes"]["/srv/d"] == {"bind": f"{MOUNT}/data", "mode": "ro"}
    assert kwargs["volumes"]["cache"] == {"bind": "/cache", "mode": "rw"}


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"container_path": "s", "source": {"type": "SECRET"}},
            "volume 's': source type 'SECRET' is not supported here",
        ),
        (
            {"container_path": "a/../b", "source": {"type": "HOST_PATH"}},
            "volume container path 'a/../b' is not valid",
        ),
        (
            {"container_path": "d", "source": {"type": "HOST_PATH", "host_path": {"path": "rel"}}},
            "volume 'd': host path 'rel' is not absolute",
        ),
    ],
)
def test_what_cannot_be_mounted_is_a_payload_error(volume: dict[str, Any], message: str) -> None:
    with pytest.raises(VolumeError) as caught:
        volume_mounts([volume], MOUNT)
    assert str(caught.value) == message
    assert isinstance(caught.value, PayloadError)  # the launch fails with it (TASK_FAILED)


def test_the_payload_carries_its_volumes() -> None:
    volume = {"container_path": "d", "source": {"type": "HOST_PATH", "host_path": {"path": "/x"}}}
    encoded = base64.b64encode(json.dumps({"image": "i", "volumes": [volume]}).encode())
    assert decode_payload(encoded).volumes == (volume,)
    with pytest.raises(PayloadError, match="volumes must be a list"):
        decode_payload(base64.b64encode(json.dumps({"image": "i", "volumes": {}}).encode()))
