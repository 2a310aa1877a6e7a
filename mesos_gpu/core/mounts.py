"""Volumes and secrets of a job (pure): the values, their checks, and their Mesos JSON.

A job may declare `secrets` (Marathon's form: `{"db": {"source": "team/db-password"}}`, the source being a
name in the cluster's secret store), use one as an environment variable (`"env": {"DB_PASSWORD":
{"secret": "db"}}`) or as a file in the sandbox (a volume `{"container_path": "secrets/db", "secret":
"db"}`), and mount `volumes`: a host path (`{"container_path": "data", "host_path": "/srv/data", "mode":
"RO"}`) or a Docker named volume (`{"container_path": "/cache", "docker_volume": {"name": "cache",
"driver": "local"}}`).

A job carries secret *references* only, never a value: the value is read where the task runs (a Mesos
secret resolver: DC/OS Enterprise's secret store; the local agent's secrets directory). So nothing of a
secret's value is in the job record, the API's views, the TaskInfo or any log line.

In the TaskInfo (`volume_json`, `secret_variable`): a `Secret` of type REFERENCE naming the source, an
`Environment.Variable` of type SECRET, a `Volume` whose `source` is HOST_PATH, DOCKER_VOLUME or SECRET
(Mesos' `volume/host_path`, `docker/volume` and `volume/secret` isolators).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.core.checker import DocumentChecker, Path

VOLUME_FIELDS = ("container_path", "mode", "host_path", "docker_volume", "secret")
DOCKER_VOLUME_FIELDS = ("name", "driver", "options")
SECRET_FIELDS = ("source",)
SECRET_ENV_FIELDS = ("secret",)
MODES = ("RO", "RW")
MAX_VOLUMES = 32
MAX_SECRETS = 32
MAX_PATH_LENGTH = 1024
MAX_SECRET_SOURCE_LENGTH = 256
MAX_DOCKER_OPTIONS = 32
MAX_DOCKER_OPTION_LENGTH = 1024

SECRET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SECRET_ID_MESSAGE = (
    "not a valid secret name (1 to 63 letters, digits, '_', '.' or '-', starting alphanumeric)"
)
SECRET_SOURCE = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
SECRET_SOURCE_MESSAGE = (
    f"must be a secret store path of at most {MAX_SECRET_SOURCE_LENGTH} characters: names of letters, "
    "digits, '_', '.' or '-' separated by '/' (no '.' or '..' part)"
)
DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
DOCKER_NAME_MESSAGE = (
    "not a valid Docker volume name (letters, digits, '_', '.' or '-', starting alphanumeric)"
)
DOCKER_DRIVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
DOCKER_DRIVER_MESSAGE = "not a valid volume driver name (e.g. \"local\", \"rexray/ebs\")"
RESERVED_SANDBOX_NAMES = frozenset({"stdout", "stderr"})
NO_SECRET_MESSAGE = "no such secret: declare it in secrets"

#: Mesos' Volume.Source.Type of each kind of volume.
SOURCE_TYPES = {"host_path": "HOST_PATH", "docker_volume": "DOCKER_VOLUME", "secret": "SECRET"}


@dataclass(frozen=True)
class DockerVolume:
    """A Docker named volume (Mesos Volume.Source.DockerVolume): its name, driver and driver options."""

    name: str
    driver: str = "local"
    options: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "driver": self.driver, "options": dict(self.options)}


@dataclass(frozen=True)
class VolumeSpec:
    """One volume of a job: where it appears (`container_path`, relative: in the sandbox), its `mode`
    (RO or RW), and exactly one source: a `host_path`, a `docker_volume` or a `secret` (a name of the
    job's `secrets`, whose value becomes the file)."""

    container_path: str
    mode: str = "RW"
    host_path: str | None = None
    docker_volume: DockerVolume | None = None
    secret: str | None = None

    @property
    def kind(self) -> str:
        """"host_path", "docker_volume" or "secret"."""
        if self.host_path is not None:
            return "host_path"
        return "docker_volume" if self.docker_volume is not None else "secret"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"container_path": self.container_path, "mode": self.mode}
        if self.host_path is not None:
            out["host_path"] = self.host_path
        if self.docker_volume is not None:
            out["docker_volume"] = self.docker_volume.to_dict()
        if self.secret is not None:
            out["secret"] = self.secret
        return out


def secret_json(source: str) -> dict[str, Any]:
    """A Mesos `Secret` of type REFERENCE naming `source` in the secret store (no value, ever)."""
    return {"type": "REFERENCE", "reference": {"name": source}}


def secret_variable(name: str, source: str) -> dict[str, Any]:
    """An `Environment.Variable` of type SECRET: the agent's secret resolver supplies its value."""
    return {"name": name, "type": "SECRET", "secret": secret_json(source)}


def volume_json(volume: VolumeSpec, secrets: Mapping[str, str]) -> dict[str, Any]:
    """A Mesos `Volume` with its `source` (HOST_PATH, DOCKER_VOLUME or SECRET); `secrets` maps the job's
    secret names to their sources."""
    source: dict[str, Any] = {"type": SOURCE_TYPES[volume.kind]}
    if volume.host_path is not None:
        source["host_path"] = {"path": volume.host_path}
    elif volume.docker_volume is not None:
        docker: dict[str, Any] = {"driver": volume.docker_volume.driver, "name": volume.docker_volume.name}
        if volume.docker_volume.options:
            docker["driver_options"] = {"parameter": [
                {"key": key, "value": value} for key, value in sorted(volume.docker_volume.options.items())
            ]}
        source["docker_volume"] = docker
    else:
        assert volume.secret is not None
        source["secret"] = secret_json(secrets[volume.secret])
    return {"container_path": volume.container_path, "mode": volume.mode, "source": source}


def path_parts(path: str) -> list[str] | None:
    """The parts of a '/'-separated path, or None when one is empty, '.' or '..' (or it has a NUL)."""
    if "\x00" in path:
        return None
    parts = path[1:].split("/") if path.startswith("/") else path.split("/")
    return None if any(part in ("", ".", "..") for part in parts) else parts


class MountChecker(DocumentChecker):
    """The checks of `secrets`, secret environment variables and `volumes` (a mixin of the job checker)."""

    def secrets(self, path: Path, value: object) -> dict[str, str] | None:
        """The job's secrets, name -> source."""
        raw = self.mapping(path, value, None)
        if raw is None:
            return None
        if len(raw) > MAX_SECRETS:
            self.error(path, f"at most {MAX_SECRETS} secrets")
            return None
        out: dict[str, str] = {}
        for name, item in raw.items():
            if not SECRET_ID.fullmatch(name):
                self.error((*path, name), SECRET_ID_MESSAGE)
                continue
            doc = self.mapping((*path, name), item, SECRET_FIELDS)
            if doc is None:
                continue
            if "source" not in doc:
                self.error((*path, name, "source"), "required")
                continue
            source = self.text((*path, name, "source"), doc["source"], SECRET_SOURCE,
                               MAX_SECRET_SOURCE_LENGTH, SECRET_SOURCE_MESSAGE)
            if source is not None and path_parts(source) is None:
                self.error((*path, name, "source"), SECRET_SOURCE_MESSAGE)
            elif source is not None:
                out[name] = source
        return out if len(out) == len(raw) else None

    def secret_reference(self, path: Path, value: Mapping[str, Any], secrets: Mapping[str, str] | None
                         ) -> str | None:
        """An env value `{"secret": NAME}`: the name of one of the job's secrets."""
        doc = self.mapping(path, value, SECRET_ENV_FIELDS)
        if doc is None:
            return None
        if "secret" not in doc:
            self.error((*path, "secret"), "required")
            return None
        return self.secret_name((*path, "secret"), doc["secret"], secrets)

    def secret_name(self, path: Path, value: object, secrets: Mapping[str, str] | None) -> str | None:
        if not isinstance(value, str) or not SECRET_ID.fullmatch(value):
            self.error(path, SECRET_ID_MESSAGE)
            return None
        if secrets is not None and value not in secrets:
            self.error(path, NO_SECRET_MESSAGE)
            return None
        return value if secrets is not None else None

    def job_volumes(self, doc: Mapping[str, Any], secrets: Mapping[str, str] | None
                    ) -> tuple[VolumeSpec, ...] | None:
        """The job's volumes (an absolute container_path needs every member to have an image)."""
        roles = doc.get("roles")
        members = list(roles.values()) if isinstance(roles, dict) and roles else [{}]
        images = doc.get("image") is not None or all(
            isinstance(member, dict) and member.get("image") is not None for member in members
        )
        return self.volumes(("volumes",), doc.get("volumes", []), secrets, all_have_images=images)

    def uri_credentials(self, value: object) -> None:
        """A `uris` URL must not carry a user or password: the job (and so every view of it) and the
        fetcher's messages show it in full. Secrets belong in `secrets`."""
        for index, item in enumerate(value if isinstance(value, list) else []):
            path: Path = ("uris", index) if isinstance(item, str) else ("uris", index, "value")
            url = item if isinstance(item, str) else item.get("value") if isinstance(item, dict) else None
            try:
                netloc = urllib.parse.urlsplit(url).netloc if isinstance(url, str) else ""
            except ValueError:   # not a URL: its own check says so
                netloc = ""
            if "@" in netloc:
                self.error(path, "must not hold a user or password (every view of the job shows it): "
                                 "serve it without, or give the task a secret")

    def volumes(self, path: Path, value: object, secrets: Mapping[str, str] | None, *, all_have_images: bool
                ) -> tuple[VolumeSpec, ...] | None:
        """The job's volumes; an absolute container_path needs an image on every member (without one the
        task runs on the agent host, where only a path in its sandbox is the task's own)."""
        if not isinstance(value, list) or len(value) > MAX_VOLUMES:
            self.error(path, f"must be a list of at most {MAX_VOLUMES} volumes")
            return None
        out: list[VolumeSpec | None] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            volume = self.volume((*path, index), item, secrets, all_have_images)
            if volume is not None:
                target = volume.container_path.rstrip("/")
                if target in seen:
                    self.error((*path, index, "container_path"), "another volume has this container_path")
                    volume = None
                seen.add(target)
            out.append(volume)
        return tuple(v for v in out if v is not None) if None not in out else None

    def volume(self, path: Path, value: object, secrets: Mapping[str, str] | None, all_have_images: bool
               ) -> VolumeSpec | None:
        doc = self.mapping(path, value, VOLUME_FIELDS)
        if doc is None:
            return None
        before = len(self.errors)
        sources = [key for key in SOURCE_TYPES if key in doc]
        if len(sources) != 1:
            self.error(path, "needs exactly one of host_path, docker_volume or secret")
        target = self.container_path((*path, "container_path"), doc, all_have_images)
        mode = doc.get("mode", "RO" if "secret" in doc else "RW")
        if mode not in MODES:
            self.error((*path, "mode"), 'must be "RO" or "RW"')
        elif "secret" in doc and mode != "RO":
            self.error((*path, "mode"), 'a secret volume is read-only: "RO"')
        host = docker = secret = None
        if "host_path" in doc:
            host = self.host_path((*path, "host_path"), doc["host_path"])
        if "docker_volume" in doc:
            docker = self.docker_volume((*path, "docker_volume"), doc["docker_volume"])
        if "secret" in doc:
            secret = self.secret_name((*path, "secret"), doc["secret"], secrets)
        if len(self.errors) > before or target is None:
            return None
        return VolumeSpec(target, str(mode), host_path=host, docker_volume=docker, secret=secret)

    def container_path(self, path: Path, doc: Mapping[str, Any], all_have_images: bool) -> str | None:
        if "container_path" not in doc:
            self.error(path, "required")
            return None
        value = doc["container_path"]
        parts = path_parts(value) if isinstance(value, str) and len(value) <= MAX_PATH_LENGTH else None
        if parts is None:
            self.error(path, f"must be a path of at most {MAX_PATH_LENGTH} characters, with no empty, "
                             "'.' or '..' part")
            return None
        if value.startswith("/") and not all_have_images:
            self.error(path, "an absolute path needs an image on every member (without one the task runs "
                             "on the agent host): use a path relative to the sandbox")
            return None
        if not value.startswith("/") and parts[0] in RESERVED_SANDBOX_NAMES:
            self.error(path, f"'{parts[0]}' is the task's own log file in the sandbox")
            return None
        return str(value)

    def host_path(self, path: Path, value: object) -> str | None:
        if (not isinstance(value, str) or len(value) > MAX_PATH_LENGTH or not value.startswith("/")
                or value == "/" or path_parts(value) is None):
            self.error(path, f"must be an absolute path of at most {MAX_PATH_LENGTH} characters, not '/', "
                             "with no empty, '.' or '..' part")
            return None
        return value

    def docker_volume(self, path: Path, value: object) -> DockerVolume | None:
        doc = self.mapping(path, value, DOCKER_VOLUME_FIELDS)
        if doc is None:
            return None
        name = None
        if "name" not in doc:
            self.error((*path, "name"), "required")
        else:
            name = self.text((*path, "name"), doc["name"], DOCKER_NAME, 255, DOCKER_NAME_MESSAGE)
        driver = self.text((*path, "driver"), doc.get("driver", "local"), DOCKER_DRIVER, 128,
                           DOCKER_DRIVER_MESSAGE)
        options = self.mapping((*path, "options"), doc.get("options", {}), None)
        if options is not None and len(options) > MAX_DOCKER_OPTIONS:
            self.error((*path, "options"), f"at most {MAX_DOCKER_OPTIONS} options")
            options = None
        for key, item in (options or {}).items():
            if not key or not isinstance(item, str) or len(key) + len(item) > MAX_DOCKER_OPTION_LENGTH:
                self.error((*path, "options", key),
                           f"must be a string (key and value at most {MAX_DOCKER_OPTION_LENGTH} characters)")
                options = None
        if name is None or driver is None or options is None:
            return None
        return DockerVolume(name, driver, dict(options))
