"""Secrets, secret env and volumes of a job: each bad combination is reported at its JSON path (and the
published schema rejects it too where it can say so), good ones parse and round-trip."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.joblimits import JOB_SCHEMA_PATH
from mesos_gpu.core.mounts import DockerVolume, VolumeSpec
from mesos_gpu.core.validation import validate_job

SCHEMA = json.loads((resources.files("mesos_gpu") / JOB_SCHEMA_PATH).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SECRETS = {"db": {"source": "team/db-password"}}
ABS = ("an absolute path needs an image on every member (without one the task runs on the agent host): "
       "use a path relative to the sandbox")
PATH_MSG = "must be a path of at most 1024 characters, with no empty, '.' or '..' part"
HOST_MSG = "must be an absolute path of at most 1024 characters, not '/', with no empty, '.' or '..' part"
ONE_OF = "needs exactly one of host_path, docker_volume or secret"
NO_SECRET = "no such secret: declare it in secrets"
CREDENTIALS = ("must not hold a user or password (every view of the job shows it): serve it without, or give "
               "the task a secret")


def job(**fields: Any) -> dict[str, Any]:
    return {"name": "j", "command": "run", **fields}


def errors_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validate_job(doc)
    return [(error.path, error.message) for error in caught.value.errors]


# (id, document, errors, whether the schema rejects it too)
BAD: list[tuple[str, dict[str, Any], list[tuple[str, str]], bool]] = [
    ("env-secret-undeclared", job(env={"P": {"secret": "db"}}), [("/env/P/secret", NO_SECRET)], False),
    ("env-secret-unknown-field", job(secrets=SECRETS, env={"P": {"secret": "db", "x": 1}}),
     [("/env/P/x", "unknown field")], True),
    ("env-secret-missing", job(secrets=SECRETS, env={"P": {}}), [("/env/P/secret", "required")], True),
    ("env-secret-not-a-name", job(secrets=SECRETS, env={"P": {"secret": 3}}),
     [("/env/P/secret", "not a valid secret name (1 to 63 letters, digits, '_', '.' or '-', starting "
                        "alphanumeric)")], True),
    ("role-env-secret", {"name": "j", "command": "c", "secrets": SECRETS,
                         "roles": {"worker": {"env": {"P": {"secret": "db"}}}}},
     [("/roles/worker/env/P", "a secret goes in the job's env (every task gets it), not a role's: set it "
                              "in the top-level `env`")], True),
    ("role-env-shadows-secret", {"name": "j", "command": "c", "secrets": SECRETS,
                                 "env": {"P": {"secret": "db"}},
                                 "roles": {"worker": {"env": {"P": "plain"}}}},
     [("/roles/worker/env/P", "the job's env sets it from a secret")], False),
    ("secrets-not-object", job(secrets=[]), [("/secrets", "must be an object")], True),
    ("secret-bad-name", job(secrets={"-x": {"source": "a"}}),
     [("/secrets/-x", "not a valid secret name (1 to 63 letters, digits, '_', '.' or '-', starting "
                      "alphanumeric)")], True),
    ("secret-no-source", job(secrets={"db": {}}), [("/secrets/db/source", "required")], True),
    ("secret-source-dotdot", job(secrets={"db": {"source": "team/../root"}}),
     [("/secrets/db/source", "must be a secret store path of at most 256 characters: names of letters, "
                             "digits, '_', '.' or '-' separated by '/' (no '.' or '..' part)")], False),
    ("secret-source-space", job(secrets={"db": {"source": "a b"}}),
     [("/secrets/db/source", "must be a secret store path of at most 256 characters: names of letters, "
                             "digits, '_', '.' or '-' separated by '/' (no '.' or '..' part)")], True),
    ("volumes-not-list", job(volumes={}), [("/volumes", "must be a list of at most 32 volumes")], True),
    ("volume-no-source", job(volumes=[{"container_path": "d"}]), [("/volumes/0", ONE_OF)], True),
    ("volume-two-sources", job(secrets=SECRETS, volumes=[{"container_path": "d", "host_path": "/a",
                                                          "secret": "db"}]),
     [("/volumes/0", ONE_OF)], True),
    ("volume-no-container-path", job(volumes=[{"host_path": "/a"}]),
     [("/volumes/0/container_path", "required")], True),
    ("volume-dotdot", job(volumes=[{"container_path": "../x", "host_path": "/a"}]),
     [("/volumes/0/container_path", PATH_MSG)], False),
    ("volume-empty-part", job(volumes=[{"container_path": "a//b", "host_path": "/a"}]),
     [("/volumes/0/container_path", PATH_MSG)], False),
    ("volume-absolute-without-image", job(volumes=[{"container_path": "/data", "host_path": "/a"}]),
     [("/volumes/0/container_path", ABS)], False),
    ("volume-absolute-one-role-without-image",
     {"name": "j", "command": "c", "roles": {"chief": {"image": "i"}, "worker": {}},
      "volumes": [{"container_path": "/data", "host_path": "/a"}]},
     [("/volumes/0/container_path", ABS)], False),
    ("volume-over-stdout", job(volumes=[{"container_path": "stdout", "host_path": "/a"}]),
     [("/volumes/0/container_path", "'stdout' is the task's own log file in the sandbox")], False),
    ("volume-host-relative", job(volumes=[{"container_path": "d", "host_path": "srv/data"}]),
     [("/volumes/0/host_path", HOST_MSG)], True),
    ("volume-host-root", job(volumes=[{"container_path": "d", "host_path": "/"}]),
     [("/volumes/0/host_path", HOST_MSG)], True),
    ("volume-host-dotdot", job(volumes=[{"container_path": "d", "host_path": "/srv/../etc"}]),
     [("/volumes/0/host_path", HOST_MSG)], False),
    ("volume-bad-mode", job(volumes=[{"container_path": "d", "host_path": "/a", "mode": "rw"}]),
     [("/volumes/0/mode", 'must be "RO" or "RW"')], True),
    ("volume-secret-rw",
     job(secrets=SECRETS, volumes=[{"container_path": "s", "secret": "db", "mode": "RW"}]),
     [("/volumes/0/mode", 'a secret volume is read-only: "RO"')], False),
    ("volume-secret-undeclared", job(volumes=[{"container_path": "s", "secret": "db"}]),
     [("/volumes/0/secret", NO_SECRET)], False),
    ("volume-same-path", job(volumes=[{"container_path": "d", "host_path": "/a"},
                                      {"container_path": "d/", "host_path": "/b"}]),
     [("/volumes/1/container_path", PATH_MSG)], False),
    ("volume-duplicate", job(volumes=[{"container_path": "d", "host_path": "/a"},
                                      {"container_path": "d", "host_path": "/b"}]),
     [("/volumes/1/container_path", "another volume has this container_path")], False),
    ("volume-unknown-field", job(volumes=[{"container_path": "d", "host_path": "/a", "readOnly": True}]),
     [("/volumes/0/readOnly", "unknown field")], True),
    ("docker-volume-no-name", job(volumes=[{"container_path": "d", "docker_volume": {"driver": "local"}}]),
     [("/volumes/0/docker_volume/name", "required")], True),
    ("docker-volume-bad-name", job(volumes=[{"container_path": "d", "docker_volume": {"name": "a b"}}]),
     [("/volumes/0/docker_volume/name", "not a valid Docker volume name (letters, digits, '_', '.' or "
                                        "'-', starting alphanumeric)")], True),
    ("docker-volume-bad-option", job(volumes=[{"container_path": "d", "docker_volume": {
        "name": "v", "options": {"size": 10}}}]),
     [("/volumes/0/docker_volume/options/size",
       "must be a string (key and value at most 1024 characters)")], True),
    ("secret-file-with-docker-containerizer",
     job(image="i", containerizer="docker", secrets=SECRETS,
         volumes=[{"container_path": "s", "secret": "db"}]),
     [("/volumes/0/secret", 'a secret file is not supported with the docker containerizer yet: use "mesos" '
                            "(with an image, the task runs in it all the same) or an env secret")], False),
    ("uri-with-password", job(uris=["https://u:tok@host/a.tgz", {"value": "http://u@host/b.tgz"}]),
     [("/uris/0", CREDENTIALS), ("/uris/1/value", CREDENTIALS)], False),
    ("volumes-with-gpu-share", job(gpus=0.5, volumes=[{"container_path": "d", "host_path": "/a"}]),
     [("/volumes", "not supported for a job with GPU shares yet: its share host starts the tasks itself")],
     False),
]


@pytest.mark.parametrize(("doc", "errors"), [(doc, errors) for _, doc, errors, _ in BAD],
                         ids=[case_id for case_id, *_ in BAD])
def test_each_bad_combination_is_reported_at_its_path(doc: dict[str, Any], errors: list[tuple[str, str]]
                                                      ) -> None:
    assert errors_of(doc) == errors


@pytest.mark.parametrize(("doc", "rejects"), [(doc, rejects) for _, doc, _, rejects in BAD],
                         ids=[case_id for case_id, *_ in BAD])
def test_the_schema_agrees_where_it_can_say_it(doc: dict[str, Any], rejects: bool) -> None:
    assert VALIDATOR.is_valid(doc) is not rejects


GOOD = job(
    image="nvcr.io/nvidia/pytorch:24.01-py3",
    secrets={"db": {"source": "team/db-password"}, "token": {"source": "/ci/token"}},
    env={"PLAIN": "1", "DB_PASSWORD": {"secret": "db"}},
    volumes=[
        {"container_path": "data", "host_path": "/srv/data", "mode": "RO"},
        {"container_path": "/cache", "docker_volume": {"name": "cache", "driver": "rexray/ebs",
                                                       "options": {"size": "10"}}},
        {"container_path": "secrets/token", "secret": "token"},
    ],
)


def test_a_good_job_parses_to_references_only() -> None:
    spec = validate_job(GOOD)
    assert spec.env == {"PLAIN": "1"}
    assert spec.secret_env == {"DB_PASSWORD": "db"}
    assert spec.secrets == {"db": "team/db-password", "token": "/ci/token"}
    assert spec.volumes == (
        VolumeSpec("data", "RO", host_path="/srv/data"),
        VolumeSpec("/cache", "RW", docker_volume=DockerVolume("cache", "rexray/ebs", {"size": "10"})),
        VolumeSpec("secrets/token", "RO", secret="token"),
    )


def test_a_good_job_round_trips_and_both_accept_it() -> None:
    spec = validate_job(GOOD)
    out = spec.to_dict()
    assert out["env"] == {"PLAIN": "1", "DB_PASSWORD": {"secret": "db"}}
    assert validate_job(out) == spec
    assert list(VALIDATOR.iter_errors(GOOD)) == []
    assert list(VALIDATOR.iter_errors(out)) == []


def test_the_docker_containerizer_takes_env_secrets_and_mounted_volumes() -> None:
    spec = validate_job(job(image="i", containerizer="docker", secrets=SECRETS, env={"P": {"secret": "db"}},
                            volumes=[{"container_path": "/data", "host_path": "/srv/data", "mode": "RO"},
                                     {"container_path": "c", "docker_volume": {"name": "cache"}}]))
    assert spec.secret_env == {"P": "db"} and len(spec.volumes) == 2


def test_a_job_without_them_keeps_its_old_canonical_form() -> None:
    out = validate_job(job()).to_dict()
    assert "secrets" not in out and "volumes" not in out
