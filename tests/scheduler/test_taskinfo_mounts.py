"""A job's secrets and volumes in its TaskInfos: Mesos' fields (Environment.Variable SECRET with a
REFERENCE `Secret`, ContainerInfo MESOS volumes with HOST_PATH / DOCKER_VOLUME / SECRET sources), strictly
valid against the Mesos protobuf tables the local master parses with, the same from the template fast
path, and with no secret value anywhere (a job holds references only)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mesos_gpu.core.taskinfo import LaunchSettings, Placed, build_task_info
from mesos_gpu.core.tasktemplates import TaskInfoTemplate, TaskInfoTemplates
from mesos_gpu.core.validation import validate_job
from mesos_gpu.local import protojson

SETTINGS = LaunchSettings(zk_url="zk://10.0.0.1:2181/mesos-gpu/t", launcher_uri="http://s:1/launcher.pyz")
PLACED = Placed(
    "S1", "host-1", (31000,), [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"}]
)
SECRETS = {"db": {"source": "team/db-password"}, "tok": {"source": "/ci/token"}}
VOLUMES = [
    {"container_path": "data", "host_path": "/srv/data", "mode": "RO"},
    {
        "container_path": "/cache",
        "docker_volume": {"name": "cache", "driver": "rexray/ebs", "options": {"size": "10", "iops": "100"}},
    },
    {"container_path": "secrets/tok", "secret": "tok"},
]


def doc(**fields: Any) -> dict[str, Any]:
    return {
        "name": "j",
        "command": "python3 train.py",
        "image": "img:1",
        "secrets": SECRETS,
        "env": {"PLAIN": "x", "DB_PASSWORD": {"secret": "db"}},
        "volumes": VOLUMES,
        **fields,
    }


def infos(data: dict[str, Any]) -> list[dict[str, Any]]:
    spec = validate_job(data)
    return [build_task_info(spec, task, 0, PLACED, SETTINGS) for task in spec.tasks("j-1")]


# The Mesos Volumes of VOLUMES[:2] (a host path, a Docker volume with driver options).
MESOS_VOLUMES = [
    {
        "container_path": "data",
        "mode": "RO",
        "source": {"type": "HOST_PATH", "host_path": {"path": "/srv/data"}},
    },
    {
        "container_path": "/cache",
        "mode": "RW",
        "source": {
            "type": "DOCKER_VOLUME",
            "docker_volume": {
                "driver": "rexray/ebs",
                "name": "cache",
                "driver_options": {
                    "parameter": [{"key": "iops", "value": "100"}, {"key": "size", "value": "10"}]
                },
            },
        },
    },
]


def test_secret_env_is_a_secret_variable_with_a_reference() -> None:
    (info,) = infos(doc())
    variables = info["command"]["environment"]["variables"]
    assert {"name": "PLAIN", "value": "x"} in variables
    assert variables[-1] == {
        "name": "DB_PASSWORD",
        "type": "SECRET",
        "secret": {"type": "REFERENCE", "reference": {"name": "team/db-password"}},
    }
    assert [v["name"] for v in variables].count("DB_PASSWORD") == 1


def test_volumes_are_mesos_volumes_with_sources() -> None:
    (info,) = infos(doc())
    assert info["container"] == {
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": "img:1"}}},
        "volumes": [
            *MESOS_VOLUMES,
            {
                "container_path": "secrets/tok",
                "mode": "RO",
                "source": {
                    "type": "SECRET",
                    "secret": {"type": "REFERENCE", "reference": {"name": "/ci/token"}},
                },
            },
        ],
    }


def test_volumes_without_an_image_give_a_mesos_container_without_one() -> None:
    data = doc(volumes=[VOLUMES[0]])
    del data["image"]
    (info,) = infos(data)
    assert info["container"] == {
        "type": "MESOS",
        "volumes": [
            {
                "container_path": "data",
                "mode": "RO",
                "source": {"type": "HOST_PATH", "host_path": {"path": "/srv/data"}},
            },
        ],
    }


@pytest.mark.parametrize(
    "data",
    [
        doc(),
        {k: v for k, v in doc(volumes=[VOLUMES[0], VOLUMES[2]]).items() if k != "image"},
        doc(roles={"chief": {}, "worker": {"instances": 2}}),
    ],
    ids=["single", "no-image", "tf"],
)
def test_the_taskinfo_is_strictly_valid_for_the_mesos_protos(data: dict[str, Any]) -> None:
    for info in infos(data):
        assert protojson.strict_errors(info, "TaskInfo") == [], info


def test_a_wrong_field_would_be_refused_by_the_strict_parse() -> None:
    """The check above can fail: the same TaskInfo with a misspelt volume field is refused."""
    (info,) = infos(doc())
    info["container"]["volumes"][0]["source"]["hostPath"] = info["container"]["volumes"][0]["source"].pop(
        "host_path"
    )
    assert protojson.strict_errors(info, "TaskInfo") != []


@pytest.mark.parametrize(
    "data", [doc(), doc(roles={"chief": {}, "worker": {"instances": 2}})], ids=["single", "tf"]
)
def test_the_template_builds_the_same_taskinfo(data: dict[str, Any]) -> None:
    spec = validate_job(data)
    templates = TaskInfoTemplates()
    for task in spec.tasks("j-1"):
        for attempt in (0, 1):
            expected = build_task_info(spec, task, attempt, PLACED, SETTINGS)
            assert json.dumps(
                templates.get(spec, task, SETTINGS).build(spec, task, attempt, PLACED)
            ) == json.dumps(expected)
            assert json.dumps(
                TaskInfoTemplate(spec, task, SETTINGS).build(spec, task, attempt, PLACED)
            ) == json.dumps(expected)


def test_two_jobs_differing_only_in_secrets_or_volumes_do_not_share_a_template() -> None:
    first, second = validate_job(doc()), validate_job(doc(secrets={**SECRETS, "db": {"source": "other"}}))
    templates = TaskInfoTemplates()
    (task_1,), (task_2,) = first.tasks("j-1"), second.tasks("j-1")
    built_1 = templates.get(first, task_1, SETTINGS).build(first, task_1, 0, PLACED)
    built_2 = templates.get(second, task_2, SETTINGS).build(second, task_2, 0, PLACED)
    assert built_1["command"]["environment"] != built_2["command"]["environment"]
    assert "other" in json.dumps(built_2) and "other" not in json.dumps(built_1)


def test_a_docker_member_carries_volumes_in_its_payload_and_secrets_in_the_executor_env() -> None:
    data = doc(containerizer="docker", volumes=VOLUMES[:2])
    (info,) = infos(data)
    assert protojson.strict_errors(info, "TaskInfo") == []
    executor = info["executor"]
    payload = json.loads(base64.b64decode(executor["data"]))
    assert payload["volumes"] == MESOS_VOLUMES
    assert executor["command"]["environment"]["variables"][-1]["type"] == "SECRET"
    assert "container" not in info  # the executor mounts them into the task's own container
