"""Sandbox directories in Mesos' layout and the `/files/read` view of them.

`<workdir>/agents/<agent>/frameworks/<F>/executors/<E>/runs/<container>` with `stdout`/`stderr` files and
a `runs/latest` link, exposed (as Mesos does) under the real path, the `latest` path and the virtual path
`/frameworks/<F>/executors/<E>/runs/latest`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Mesos caps one read at 16 pages (src/files/files.cpp).
MAX_READ_LENGTH = 16 * 4096


@dataclass(frozen=True)
class Sandbox:
    """One container's run directory."""

    directory: Path
    framework_id: str
    executor_id: str
    container_id: str

    @property
    def stdout(self) -> Path:
        return self.directory / "stdout"

    @property
    def stderr(self) -> Path:
        return self.directory / "stderr"

    @property
    def latest(self) -> Path:
        return self.directory.parent / "latest"

    @property
    def virtual_path(self) -> str:
        return f"/frameworks/{self.framework_id}/executors/{self.executor_id}/runs/latest"

    def append_stderr(self, text: str) -> None:
        with self.stderr.open("a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")


def _safe_component(value: str) -> str:
    """Ids become path components; refuse the ones that would escape the layout."""
    if not value or value in (".", "..") or "/" in value or "\x00" in value:
        raise ValueError(f"id {value!r} cannot be a sandbox path component")
    return value


def create_sandbox(agent_root: Path, framework_id: str, executor_id: str, container_id: str) -> Sandbox:
    """Make the run directory with empty stdout/stderr files and point `runs/latest` at it."""
    runs = (
        agent_root
        / "frameworks"
        / _safe_component(framework_id)
        / "executors"
        / _safe_component(executor_id)
        / "runs"
    )
    directory = runs / _safe_component(container_id)
    directory.mkdir(parents=True, exist_ok=False)
    sandbox = Sandbox(directory, framework_id, executor_id, container_id)
    sandbox.stdout.touch()
    sandbox.stderr.touch()
    tmp_link = runs / f".latest-{container_id}"
    os.symlink(container_id, tmp_link)
    os.replace(tmp_link, sandbox.latest)
    return sandbox


def create_task_sandbox(executor_sandbox: Sandbox, task_id: str) -> Sandbox:
    """A task's nested sandbox in a task group: `<executor run dir>/tasks/<task id>`."""
    directory = executor_sandbox.directory / "tasks" / _safe_component(task_id)
    directory.mkdir(parents=True, exist_ok=False)
    sandbox = Sandbox(
        directory, executor_sandbox.framework_id, executor_sandbox.executor_id, executor_sandbox.container_id
    )
    sandbox.stdout.touch()
    sandbox.stderr.touch()
    return sandbox


class FileReadError(Exception):
    """A /files/read failure with its HTTP status and Mesos' body text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class SandboxFiles:
    """The attached paths of an agent's sandboxes, resolved as Mesos' FilesProcess does."""

    def __init__(self) -> None:
        self._attached: dict[str, Path] = {}

    def attach(self, sandbox: Sandbox) -> None:
        real = sandbox.directory.resolve()
        for name in (str(sandbox.directory), str(sandbox.latest), sandbox.virtual_path, str(real)):
            self._attached[name.rstrip("/")] = real

    def detach(self, sandbox: Sandbox) -> None:
        for name in (str(sandbox.directory), str(sandbox.latest), sandbox.virtual_path):
            self._attached.pop(name.rstrip("/"), None)

    def resolve(self, path: str) -> Path | None:
        """Map a requested path onto a file inside an attached sandbox, or None."""
        requested = (
            os.path.normpath("/" + path.lstrip("/")) if path.startswith("/") else os.path.normpath(path)
        )
        best: tuple[str, Path] | None = None
        for prefix, root in self._attached.items():
            if (requested == prefix or requested.startswith(prefix + "/")) and (
                best is None or len(prefix) > len(best[0])
            ):
                best = (prefix, root)
        if best is None:
            return None
        prefix, root = best
        rest = requested[len(prefix) :].lstrip("/")
        candidate = (root / rest).resolve() if rest else root
        if candidate != root and root not in candidate.parents:
            return None  # a symlink or `..` that leaves the sandbox
        return candidate

    def read(self, path: str | None, offset: str | None, length: str | None) -> dict[str, object]:
        """The JSON body of `GET /files/read` ({"data", "offset"}); FileReadError for 400/404."""
        if not path:
            raise FileReadError(400, "Expecting 'path=value' in query.\n")
        start = _query_number("offset", offset)
        wanted = _query_number("length", length)
        size_limit = wanted if wanted > -1 else None
        resolved = self.resolve(path)
        if resolved is None or not resolved.exists():
            raise FileReadError(404, "")
        if resolved.is_dir():
            raise FileReadError(400, "Cannot read a directory.\n")
        size = resolved.stat().st_size
        if start == -1:
            return {"data": "", "offset": size}
        count = MAX_READ_LENGTH if size_limit is None else min(size_limit, MAX_READ_LENGTH)
        if start >= size:
            return {"data": "", "offset": size}
        with resolved.open("rb") as f:
            f.seek(start)
            data = f.read(count)
        return {"data": data.decode("utf-8", errors="replace"), "offset": start}


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


class FetchError(Exception):
    """A CommandInfo URI could not be put into the sandbox."""


def fetch_uris(sandbox: Sandbox, uris: list[dict[str, object]]) -> None:
    """Mesos fetcher, simplified: download or copy each URI into the sandbox, honouring `output_file`,
    `executable` (chmod 0755, no extraction) and `extract` (default true: unpack archives). Blocking:
    call it off the agent's loop thread."""
    import shutil
    import urllib.parse
    import urllib.request

    for uri in uris:
        value = str(uri.get("value", ""))
        parsed = urllib.parse.urlparse(value)
        name = str(uri.get("output_file") or os.path.basename(parsed.path) or "download")
        if "/" in name or name in (".", ".."):
            raise FetchError(f"Invalid output file '{name}' for URI '{value}'")
        target = sandbox.directory / name
        try:
            if parsed.scheme in ("http", "https", "ftp"):
                with urllib.request.urlopen(value, timeout=60) as response, target.open("wb") as out:
                    shutil.copyfileobj(response, out)
            elif parsed.scheme in ("", "file"):
                shutil.copyfile(parsed.path if parsed.scheme else value, target)
            else:
                raise FetchError(f"Unsupported URI scheme '{parsed.scheme}' in '{value}'")
        except OSError as exc:
            raise FetchError(f"Failed to fetch '{value}': {exc}") from exc
        if uri.get("executable"):
            target.chmod(0o755)
        elif uri.get("extract", True) and name.endswith(ARCHIVE_SUFFIXES):
            try:
                if name.endswith(".zip"):
                    shutil.unpack_archive(str(target), str(sandbox.directory))
                else:
                    shutil.unpack_archive(str(target), str(sandbox.directory), filter="data")
            except (OSError, ValueError, shutil.ReadError) as exc:
                raise FetchError(f"Failed to extract '{name}': {exc}") from exc
        sandbox.append_stderr(f"Fetched '{value}' to '{target}'")


def _query_number(name: str, raw: str | None) -> int:
    """A `/files/read` query number (`offset`, `length`): -1 when absent, as Mesos' files.cpp reads it."""
    if raw is None:
        return -1
    try:
        value = int(raw)
    except ValueError:
        raise FileReadError(400, f"Failed to parse {name}: Failed to convert '{raw}' to number.\n") from None
    if value < -1:
        raise FileReadError(400, f"Negative {name} provided: {value}.\n")
    return value
