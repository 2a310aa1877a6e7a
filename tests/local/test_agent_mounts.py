"""The local agent's secrets and volumes (`local.agent.mounts`): REFERENCE secrets from the secrets
directory, failures that name the secret but never its value, host-path volumes as sandbox symlinks,
secret files outside the sandbox (not served by /files), and Docker binds with their mode."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.local.agent.mounts import (
    SANDBOX_MOUNT,
    Bind,
    SecretResolver,
    TaskInputError,
    prepare_volumes,
    secret_environment,
)
from mesos_gpu.local.agent.sandbox import SandboxFiles, create_sandbox

VALUE = "s3cr3t-v@lue"


def reference(name: str, key: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name}
    if key is not None:
        ref["key"] = key
    return {"type": "REFERENCE", "reference": ref}


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    (directory / "team").mkdir(parents=True)
    (directory / "team" / "db").write_text(VALUE)
    (directory / "binary").write_bytes(b"\xff\xfe")
    (tmp_path / "outside").write_text("not a secret of the store")
    return directory


def test_a_reference_is_read_from_its_file(secrets_dir: Path) -> None:
    resolver = SecretResolver(secrets_dir)
    assert resolver.resolve(reference("team/db")) == VALUE.encode()
    assert resolver.resolve(reference("/team/db")) == VALUE.encode()  # DC/OS writes a leading '/'


def test_a_value_secret_is_its_data() -> None:
    data = base64.b64encode(b"inline").decode()
    assert SecretResolver(None).resolve({"type": "VALUE", "value": {"data": data}}) == b"inline"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (reference("team/missing"), "secret 'team/missing' is not in the agent's secrets directory"),
        (reference("../outside"), "secret '../outside' is not a valid secret name"),
        (reference("team/../../outside"), "secret 'team/../../outside' is not a valid secret name"),
        (
            reference("team/db", key="k"),
            "secret 'team/db': a reference with a key is not supported by this agent",
        ),
        ({"type": "UNKNOWN"}, "secret type 'UNKNOWN' is not supported"),
    ],
)
def test_a_secret_that_cannot_be_resolved_fails_with_its_name_only(
    secrets_dir: Path, secret: dict[str, Any], message: str
) -> None:
    with pytest.raises(TaskInputError) as caught:
        SecretResolver(secrets_dir).resolve(secret)
    assert str(caught.value) == message
    assert VALUE not in str(caught.value)


def test_without_a_secrets_directory_the_message_says_how_to_give_one() -> None:
    with pytest.raises(TaskInputError, match="this agent has no secrets directory"):
        SecretResolver(None).resolve(reference("team/db"))


def test_secret_environment_resolves_only_secret_variables(secrets_dir: Path) -> None:
    command = {
        "environment": {
            "variables": [
                {"name": "PLAIN", "value": "x"},
                {"name": "DB", "type": "SECRET", "secret": reference("team/db")},
            ]
        }
    }
    assert secret_environment(command, SecretResolver(secrets_dir)) == {"DB": VALUE}


def test_a_secret_that_is_not_text_cannot_be_an_environment_variable(secrets_dir: Path) -> None:
    command = {"environment": {"variables": [{"name": "B", "type": "SECRET", "secret": reference("binary")}]}}
    with pytest.raises(TaskInputError, match="the secret of environment variable B is not UTF-8 text"):
        secret_environment(command, SecretResolver(secrets_dir))


def host_volume(target: str, host: Path | str, mode: str = "RO") -> dict[str, Any]:
    return {
        "container_path": target,
        "mode": mode,
        "source": {"type": "HOST_PATH", "host_path": {"path": str(host)}},
    }


def test_on_the_host_volumes_are_symlinks_and_secret_files_live_outside_the_sandbox(
    tmp_path: Path, secrets_dir: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("hello")
    sandbox = create_sandbox(tmp_path / "agent", "F", "E", "C")
    private = tmp_path / "agent" / "secrets" / "C"
    container = {
        "type": "MESOS",
        "volumes": [
            host_volume("inputs/data", data),
            {"container_path": "legacy", "host_path": str(data), "mode": "RW"},  # the older Volume.host_path
            {
                "container_path": "secrets/db",
                "mode": "RO",
                "source": {"type": "SECRET", "secret": reference("team/db")},
            },
        ],
    }
    binds = prepare_volumes(
        container, sandbox.directory, private, SecretResolver(secrets_dir), in_docker=False
    )
    assert binds == []  # nothing to mount: the host runner sees symlinks
    assert (sandbox.directory / "inputs" / "data" / "f.txt").read_text() == "hello"
    assert (sandbox.directory / "legacy").resolve() == data.resolve()
    secret_link = sandbox.directory / "secrets" / "db"
    assert secret_link.read_text() == VALUE
    target = secret_link.resolve()
    assert sandbox.directory.resolve() not in target.parents
    assert stat.S_IMODE(target.stat().st_mode) == 0o400
    files = SandboxFiles()
    files.attach(sandbox)
    assert files.resolve(f"{sandbox.virtual_path}/secrets/db") is None  # /files/read will not serve it
    assert files.resolve(f"{sandbox.virtual_path}/stdout") is not None


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            host_volume("/data", "/"),
            "volume '/data': an absolute container path needs the task to run in a Docker "
            "image: this agent runs it on the host",
        ),
        (
            host_volume("d", "/no/such/path"),
            "host path '/no/such/path' of volume 'd' does not exist on this agent",
        ),
        (host_volume("stdout", "/"), "volume 'stdout': the path already exists in the sandbox"),
        (
            {
                "container_path": "c",
                "mode": "RW",
                "source": {"type": "DOCKER_VOLUME", "docker_volume": {"name": "v"}},
            },
            "Docker volume 'v' needs the task to run in a Docker image: this agent runs it on the host",
        ),
        (
            {
                "container_path": "c",
                "mode": "RW",
                "source": {"type": "SANDBOX_PATH", "sandbox_path": {"path": "x"}},
            },
            "volume 'c': source type 'SANDBOX_PATH' is not supported by this agent",
        ),
    ],
)
def test_what_the_host_cannot_provide_fails_the_launch(
    tmp_path: Path, volume: dict[str, Any], message: str
) -> None:
    sandbox = create_sandbox(tmp_path / "agent", "F", "E", "C")
    with pytest.raises(TaskInputError) as caught:
        prepare_volumes(
            {"type": "MESOS", "volumes": [volume]},
            sandbox.directory,
            tmp_path / "p",
            SecretResolver(None),
            in_docker=False,
        )
    assert str(caught.value) == message


def test_a_link_out_of_the_sandbox_is_not_followed(tmp_path: Path) -> None:
    sandbox = create_sandbox(tmp_path / "agent", "F", "E", "C")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (sandbox.directory / "out").symlink_to(elsewhere)  # e.g. from a fetched archive
    with pytest.raises(TaskInputError, match="leaves the sandbox"):
        prepare_volumes(
            {"volumes": [host_volume("out/d", tmp_path)]},
            sandbox.directory,
            tmp_path / "p",
            SecretResolver(None),
            in_docker=False,
        )
    assert list(elsewhere.iterdir()) == []


def test_in_docker_every_volume_is_a_bind_with_its_mode(tmp_path: Path, secrets_dir: Path) -> None:
    sandbox = create_sandbox(tmp_path / "agent", "F", "E", "C")
    private = tmp_path / "private"
    container = {
        "type": "MESOS",
        "volumes": [
            host_volume("data", tmp_path, "RO"),
            host_volume("/abs", tmp_path, "RW"),
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
            {
                "container_path": "s/db",
                "mode": "RO",
                "source": {"type": "SECRET", "secret": reference("team/db")},
            },
        ],
    }
    binds = prepare_volumes(
        container, sandbox.directory, private, SecretResolver(secrets_dir), in_docker=True
    )
    assert binds == [
        Bind(str(tmp_path), f"{SANDBOX_MOUNT}/data", True),
        Bind(str(tmp_path), "/abs", False),
        Bind("cache", "/cache", False, driver="rexray/ebs", options={"size": "1"}),
        Bind(str(private / "volume-3"), f"{SANDBOX_MOUNT}/s/db", True),
    ]
    assert (private / "volume-3").read_text() == VALUE
    assert not (sandbox.directory / "data").exists()  # mounted by the engine, not linked
