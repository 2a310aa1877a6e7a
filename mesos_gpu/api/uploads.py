"""Uploaded working directories (`mesos-gpu run`): `POST /v1/uploads` takes a gzipped tar, keeps it under
its sha256, and answers the URI a task fetches it from (`GET /v1/uploads/<sha256>.tar.gz`).

The archive is checked before it is kept: a gzipped tar whose every member is a plain file, a directory
or a link that stays inside it (tarfile's `data_filter`), so what Mesos unpacks into the sandbox stays
there. `POST` needs a token when writes do; `GET` needs none, like the launcher bundle, because the
Mesos fetcher has none (the sha256 in the URI is the secret: 256 bits no one guesses). `GET /v1/uploads`
answers the limit, so the CLI can check before it sends.

Each scheduler instance keeps its own uploads (a directory: `MESOS_GPU_UPLOAD_DIR`, else a temporary
one removed when it stops) and answers URIs naming itself; nothing is shared through ZooKeeper.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tornado.iostream import StreamClosedError

from mesos_gpu.api.context import ApiContext
from mesos_gpu.api.handlers import ApiHandler
from mesos_gpu.core.errors import FieldError, NotFoundError, TooLargeError, ValidationError

ARCHIVE_TYPE = "application/gzip"
SUFFIX = ".tar.gz"
NAME = re.compile(r"([0-9a-f]{64})\.tar\.gz")
READ_CHUNK = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
#: An archive may unpack to at most this many times the upload limit (a gzip bomb is refused early).
MAX_EXPANSION = 20
#: How long an upload's body may take to arrive (the API's other bodies: `server.BODY_TIMEOUT`).
UPLOAD_BODY_TIMEOUT = 600.0


class BadArchiveError(ValidationError):
    """The uploaded body is not a gzipped tar (or holds a member that would land outside the sandbox)."""

    code = "invalid_archive"

    def __init__(self, why: str) -> None:
        super().__init__([FieldError("", why)], f"the body is not a usable gzipped tar archive: {why}")


@dataclass
class UploadStore:
    """Where uploads are kept and how their URIs start.

    `directory`: None makes a temporary one (removed by `close`). `base_url`: the scheduler's address
    as agents reach it (as for the launcher bundle); None: the address the uploading client used.
    """

    max_bytes: int
    directory: Path | None = None
    base_url: str | None = None
    _temporary: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="mesos-gpu-uploads-"))
            self._temporary = True
        else:
            self.directory = Path(self.directory)
            self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        assert self.directory is not None
        return self.directory

    def path_of(self, sha256: str) -> Path:
        return self.root / f"{sha256}{SUFFIX}"

    def uri(self, sha256: str, request_base: str) -> str:
        return f"{(self.base_url or request_base).rstrip('/')}/v1/uploads/{sha256}{SUFFIX}"

    def spool(self) -> IO[bytes]:
        """A temporary file beside the uploads (so keeping it is a rename)."""
        return tempfile.NamedTemporaryFile(dir=self.root, prefix=".incoming-", delete=False)

    def keep(self, spooled: str) -> tuple[str, int, bool]:
        """Check the spooled archive and keep it under its sha256: (sha256, bytes, newly kept).
        BadArchiveError when it is not a gzipped tar; the spooled file is gone either way."""
        try:
            digest, size = _digest(spooled)
            check_archive(spooled, self.max_bytes * MAX_EXPANSION)
            target = self.path_of(digest)
            if target.exists():
                return digest, size, False
            os.chmod(spooled, 0o644)
            os.replace(spooled, target)
            return digest, size, True
        finally:
            if os.path.exists(spooled):
                os.unlink(spooled)

    def close(self) -> None:
        """Remove the directory when it is a temporary one."""
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)


def _digest(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_archive(path: str, max_unpacked: int) -> None:
    """BadArchiveError unless `path` is a complete gzipped tar whose members all stay inside it and
    unpack to at most `max_unpacked` bytes (checked at each member's header, before its data)."""
    with open(path, "rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            raise BadArchiveError("it is not gzip data (send `tar -cz` output)")
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            unpacked = 0
            for member in archive:
                unpacked += member.size
                if unpacked > max_unpacked:
                    raise BadArchiveError(f"it unpacks to more than {megabytes(max_unpacked)}")
                try:
                    tarfile.data_filter(member, "/sandbox")
                except tarfile.FilterError as exc:
                    raise BadArchiveError(f"member {member.name!r} is refused: {exc}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadArchiveError(f"{type(exc).__name__}: {exc}") from None


def megabytes(size: int) -> str:
    """A byte count as MB with one decimal (MB = 2**20 bytes)."""
    return f"{size / (1 << 20):.1f} MB"


# ---------------------------------------------------------------------------------------- handlers
class UploadsHandler(ApiHandler):
    """POST: keep a gzipped tar (201 {"uri", "sha256", "bytes"}; 200 when it was already kept).
    GET: the limit ({"max_bytes"}). Any scheduler instance serves its own uploads (no redirect)."""

    leader_only = False

    def initialize(self, context: ApiContext, uploads: UploadStore) -> None:  # type: ignore[override]
        super().initialize(context)
        self.uploads = uploads
        self._spool: IO[bytes] | None = None
        self._received = 0

    @property
    def max_body_bytes(self) -> int:  # type: ignore[override]
        return self.uploads.max_bytes

    async def prepare(self) -> None:
        await super().prepare()  # an announced body over the limit: 413 (read first when a bit over)
        if self.request.method != "POST" or self._body_too_large:
            return
        set_body_timeout = getattr(self.request.connection, "set_body_timeout", None)
        if callable(set_body_timeout):
            set_body_timeout(UPLOAD_BODY_TIMEOUT)
        self._spool = self.uploads.spool()

    def too_large_message(self) -> str:
        announced = self.request.headers.get("Content-Length", "").strip()
        size = int(announced) if announced.isdigit() else None
        shown = f"{megabytes(size)} " if size is not None else ""
        return (
            f"the upload {shown}is larger than this scheduler's limit of {megabytes(self.uploads.max_bytes)} "
            "(MESOS_GPU_UPLOAD_MAX_MB); leave large files out of the directory"
        )

    def data_received(self, chunk: bytes) -> None:
        if self._spool is None or self._body_too_large:
            return
        self._received += len(chunk)
        if self._received > self.uploads.max_bytes:
            self._body_too_large = True
            self._discard()
            return
        self._spool.write(chunk)

    def _discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            Path(self._spool.name).unlink(missing_ok=True)
            self._spool = None

    def on_connection_close(self) -> None:
        self._discard()

    def on_finish(self) -> None:
        self._discard()
        super().on_finish()

    async def post(self) -> None:
        if self._body_too_large or self._spool is None:
            raise TooLargeError(self.too_large_message())
        spool, self._spool = self._spool, None
        spool.close()
        if self._received == 0:
            Path(spool.name).unlink(missing_ok=True)
            raise BadArchiveError("the body is empty")
        digest, size, created = await self.call(self.uploads.keep, spool.name)
        request_base = f"{self.request.protocol}://{self.request.host}"
        uri = self.uploads.uri(digest, request_base)
        self.set_header("Location", f"/v1/uploads/{digest}{SUFFIX}")
        self.send_json({"uri": uri, "sha256": digest, "bytes": size}, 201 if created else 200)

    async def get(self) -> None:
        self.send_json({"max_bytes": self.uploads.max_bytes})


class UploadHandler(ApiHandler):
    """GET/HEAD `/v1/uploads/<sha256>.tar.gz`: the archive (no token: the Mesos fetcher has none)."""

    leader_only = False
    authenticated = False

    def initialize(self, context: ApiContext, uploads: UploadStore) -> None:  # type: ignore[override]
        super().initialize(context)
        self.uploads = uploads

    def _path(self, name: str) -> Path:
        match = NAME.fullmatch(name)
        path = self.uploads.path_of(match.group(1)) if match else None
        if path is None or not path.is_file():
            raise NotFoundError(
                f"no upload {name!r} on this scheduler (each scheduler serves the uploads it took)"
            )
        return path

    def _describe(self, path: Path) -> None:
        self.set_header("Content-Type", ARCHIVE_TYPE)
        self.set_header("Content-Length", str(path.stat().st_size))
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")  # content-addressed

    async def get(self, name: str) -> None:
        path = self._path(name)
        self._describe(path)
        with path.open("rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                self.write(chunk)
                try:
                    await self.flush()
                except StreamClosedError:  # gone, or closed for not reading (ApiHandler.flush)
                    return
        self.finish()

    def head(self, name: str) -> None:
        self._describe(self._path(name))
        self.finish()


def routes(context: ApiContext, uploads: UploadStore) -> list[Any]:
    """The routes of uploads, for `make_app`."""
    args = {"context": context, "uploads": uploads}
    return [
        (r"/v1/uploads/?", UploadsHandler, args),
        (r"/v1/uploads/([^/]+)", UploadHandler, args),
    ]
