"""What the local agent does with a task's secrets and volumes, just before its process starts.

Secrets (Mesos `Secret`): a VALUE secret is its own data (as Mesos' default resolver); a REFERENCE secret
is read from the agent's secrets directory (`AgentConfig.secrets_dir`, one file per secret name: the
name "team/db" is the file `<dir>/team/db`), which stands in for a secret store (Mesos' own agent has no
REFERENCE resolver: DC/OS Enterprise's secret store module is one). A secret that cannot be resolved fails
the task; the messages name the secret, never a value.

- Environment.Variable of type SECRET: the variable gets the secret's value (UTF-8 text, no NUL).
- Volumes (`ContainerInfo.volumes`), for a task run on the host: a HOST_PATH volume (or the older
  `host_path` field) at a sandbox-relative `container_path` becomes a symlink there to the host path (as
  Mesos' `filesystem/posix` isolator does); a SECRET volume becomes a 0400 file in an agent-private
  directory outside the sandbox (`<agent>/secrets/<container>`, removed when the task ends) with a
  symlink to it at the container path, so the agent's `/files` API (which refuses links that leave the
  sandbox) does not serve it. Absolute container paths and DOCKER_VOLUME sources need the task to run in
  a Docker image: the task fails with a message saying so.
- For a task run in a Docker image (the local Docker runner): each volume is a bind mount (`Bind`), with
  its mode: RO is enforced there. On the host, nothing enforces RO (a symlink is no mount) and nothing
  hides a host path from other processes: the task runs as the agent's user and can reach what it can.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mesos_gpu.core.mounts import path_parts

#: Where the Docker runner mounts the sandbox in the container (isolator.docker.SANDBOX_MOUNT).
SANDBOX_MOUNT = "/mnt/mesos/sandbox"


class TaskInputError(Exception):
    """A secret or volume the agent cannot provide; the text names it, never a secret's value."""


@dataclass(frozen=True)
class Bind:
    """A mount of a Docker container: a host path or a named volume (`driver`, `options`) at `target`."""

    source: str
    target: str
    read_only: bool
    driver: str | None = None  # set for a named Docker volume
    options: Mapping[str, str] = field(default_factory=dict)


class SecretResolver:
    """Resolves Mesos `Secret`s: VALUE ones from their data, REFERENCE ones from `directory`."""

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = None if directory is None else Path(directory)

    def resolve(self, secret: Mapping[str, Any]) -> bytes:
        kind = secret.get("type")
        if kind == "VALUE":
            try:
                return base64.b64decode(str(secret.get("value", {}).get("data", "")), validate=True)
            except ValueError:
                raise TaskInputError("a VALUE secret is not valid base64") from None
        if kind != "REFERENCE":
            raise TaskInputError(f"secret type {kind!r} is not supported")
        reference = secret.get("reference") or {}
        name = str(reference.get("name", ""))
        if reference.get("key"):
            raise TaskInputError(f"secret '{name}': a reference with a key is not supported by this agent")
        return self._read(name)

    def _read(self, name: str) -> bytes:
        parts = path_parts(name.lstrip("/")) if name else None
        if parts is None:
            raise TaskInputError(f"secret '{name}' is not a valid secret name")
        if self.directory is None:
            raise TaskInputError(
                f"secret '{name}' cannot be resolved: this agent has no secrets directory "
                "(mesos-gpu local: MESOS_GPU_SECRETS_DIR, or the agent option secrets_dir)"
            )
        root = self.directory.resolve()
        path = root.joinpath(*parts).resolve()
        if root not in path.parents:
            raise TaskInputError(f"secret '{name}' is not a valid secret name")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise TaskInputError(f"secret '{name}' is not in the agent's secrets directory") from None
        except OSError as exc:
            raise TaskInputError(f"secret '{name}' cannot be read: {exc.strerror or type(exc).__name__}"
                                 ) from None


def secret_environment(command: Mapping[str, Any], resolver: SecretResolver) -> dict[str, str]:
    """The values of the CommandInfo's SECRET environment variables."""
    env: dict[str, str] = {}
    for variable in (command.get("environment") or {}).get("variables", []):
        if variable.get("type") != "SECRET":
            continue
        name = str(variable.get("name", ""))
        data = resolver.resolve(variable.get("secret") or {})
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TaskInputError(f"the secret of environment variable {name} is not UTF-8 text") from None
        if "\x00" in text:
            raise TaskInputError(f"the secret of environment variable {name} holds a NUL character")
        env[name] = text
    return env


def prepare_volumes(container: Mapping[str, Any] | None, sandbox: Path, private: Path,
                    resolver: SecretResolver, *, in_docker: bool) -> list[Bind]:
    """Make the container's volumes available (see the module's text): on the host, symlinks and secret
    files now; in Docker, the binds to mount. `private` is the task's directory for secret files."""
    binds: list[Bind] = []
    for index, volume in enumerate((container or {}).get("volumes", [])):
        target = str(volume.get("container_path", ""))
        read_only = volume.get("mode", "RW") == "RO"
        source = dict(volume.get("source") or {})
        if not source and volume.get("host_path"):
            source = {"type": "HOST_PATH", "host_path": {"path": volume["host_path"]}}
        kind = source.get("type")
        relative = _relative(target)
        if kind == "HOST_PATH":
            host = str((source.get("host_path") or {}).get("path", ""))
            if not os.path.isabs(host) or not os.path.exists(host):
                raise TaskInputError(f"host path '{host}' of volume '{target}' does not exist on this agent")
            binds.append(_place(host, target, relative, sandbox, read_only=read_only, in_docker=in_docker))
        elif kind == "SECRET":
            data = resolver.resolve(source.get("secret") or {})
            private.mkdir(mode=0o700, parents=True, exist_ok=True)
            file = private / f"volume-{index}"
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            binds.append(_place(str(file), target, relative, sandbox, read_only=True, in_docker=in_docker))
        elif kind == "DOCKER_VOLUME":
            docker = source.get("docker_volume") or {}
            if not in_docker:
                raise TaskInputError(f"Docker volume '{docker.get('name')}' needs the task to run in a "
                                     "Docker image: this agent runs it on the host")
            options = {p.get("key", ""): p.get("value", "")
                       for p in (docker.get("driver_options") or {}).get("parameter", [])}
            binds.append(Bind(str(docker.get("name", "")), _in_container(target, relative), read_only,
                              driver=str(docker.get("driver") or "local"), options=options))
        else:
            raise TaskInputError(f"volume '{target}': source type {kind!r} is not supported by this agent")
    return [bind for bind in binds if bind.target]


def _relative(target: str) -> PurePosixPath | None:
    """A sandbox-relative container path's parts; None for an absolute one; error for a bad one."""
    parts = path_parts(target) if target else None
    if parts is None:
        raise TaskInputError(f"volume container path '{target}' is not a valid path")
    return None if target.startswith("/") else PurePosixPath(*parts)


def _in_container(target: str, relative: PurePosixPath | None) -> str:
    return target if relative is None else f"{SANDBOX_MOUNT}/{relative}"


def _place(host: str, target: str, relative: PurePosixPath | None, sandbox: Path, *, read_only: bool,
           in_docker: bool) -> Bind:
    """A host file or directory at the container path: a bind in Docker; a symlink in the sandbox on
    the host (returned as a Bind with an empty target: nothing to mount)."""
    if in_docker:
        return Bind(host, _in_container(target, relative), read_only)
    if relative is None:
        raise TaskInputError(f"volume '{target}': an absolute container path needs the task to run in a "
                             "Docker image: this agent runs it on the host")
    link = sandbox.joinpath(*relative.parts)
    if os.path.lexists(link):
        raise TaskInputError(f"volume '{target}': the path already exists in the sandbox")
    link.parent.mkdir(parents=True, exist_ok=True)
    root = sandbox.resolve()
    if link.parent.resolve() != root and root not in link.parent.resolve().parents:
        raise TaskInputError(f"volume '{target}': the path leaves the sandbox (through a link)")
    os.symlink(host, link)
    return Bind(host, "", read_only)


def remove_private(private: Path) -> None:
    """Remove a task's secret files (when it ends, or its launch failed)."""
    shutil.rmtree(private, ignore_errors=True)
