"""The working directory as `mesos-gpu run` uploads it: a gzipped tar under one top directory
(`RUN_DIR`, which the task `cd`s into once Mesos has unpacked the archive into its sandbox), built in
memory and stopped as soon as it passes the scheduler's limit.

Left out: version-control and virtualenv directories and Python caches (`ALWAYS_SKIPPED`), anything a
pattern of `.mesosgpuignore` (one per line, `#` comments) or `--exclude` matches, and symbolic links
that point outside the directory. A pattern without `/` matches a file or directory name at any
depth (`*.ckpt`, `data`); one with `/` matches the path from the top (`data/raw`, `/logs`).
The archive is deterministic (sorted, gzip time 0), so the same files upload to the same sha256.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RUN_DIR = "workdir"
IGNORE_FILE = ".mesosgpuignore"
ALWAYS_SKIPPED = frozenset(
    {".git", ".hg", ".svn", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)


class ArchiveTooLargeError(Exception):
    """The directory does not fit the upload limit; str() says by how much, what is big, and what to do."""


@dataclass(frozen=True)
class Archive:
    """The gzipped tar and what went into it."""

    data: bytes
    files: int
    unpacked: int  # bytes of the files, before compression
    skipped_links: tuple[str, ...] = field(default=())


def megabytes(size: float) -> str:
    """A size for people: MB with one decimal (MB = 2**20 bytes), or GB above 10 GB."""
    if size >= 10 * (1 << 30):
        return f"{size / (1 << 30):.1f} GB"
    return f"{size / (1 << 20):.1f} MB"


def read_patterns(root: Path, extra: Sequence[str] = ()) -> list[str]:
    """The exclusion patterns: `.mesosgpuignore` in `root` (if any) and then `extra`."""
    patterns: list[str] = []
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        for line in ignore.read_text(encoding="utf-8", errors="replace").splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                patterns.append(text)
    patterns.extend(p.strip() for p in extra if p.strip())
    return patterns


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether the path `relative` (posix, from the top) is left out."""
    parts = relative.split("/")
    if any(part in ALWAYS_SKIPPED for part in parts):
        return True
    for raw in patterns:
        pattern = raw.rstrip("/")
        if "/" in pattern:
            if fnmatch.fnmatchcase(relative, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(parts[-1], pattern):
            return True
    return False


def walk(root: Path, patterns: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every entry to archive, directories before their contents, sorted."""
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        base = here.relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        kept = sorted(d for d in dirs if not excluded(prefix + d, patterns))
        dirs[:] = [d for d in kept if not (here / d).is_symlink()]
        for name in sorted([*kept, *files]):
            relative = prefix + name
            if name in files and excluded(relative, patterns):
                continue
            yield relative, here / name


def _inside(root: Path, link: Path) -> bool:
    try:
        target = link.resolve()
    except OSError:
        return False
    return target == root or root in target.parents


class _Capped(io.RawIOBase):
    """A growing buffer that raises ArchiveTooLargeError as soon as it holds more than `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer.extend(data)
        if len(self.buffer) > self.limit:
            raise ArchiveTooLargeError()
        return len(data)


def build_archive(root: Path, limit: int, exclude: Sequence[str] = ()) -> Archive:
    """The gzipped tar of `root` under RUN_DIR; ArchiveTooLargeError once it passes `limit` bytes."""
    root = root.resolve()
    patterns = read_patterns(root, exclude)
    sink = _Capped(limit)
    files = unpacked = 0
    skipped: list[str] = []
    try:
        with (
            gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.add(root, RUN_DIR, recursive=False)
            for relative, path in walk(root, patterns):
                if path.is_symlink() and not _inside(root, path):
                    skipped.append(relative)
                    continue
                tar.add(path, f"{RUN_DIR}/{relative}", recursive=False)
                if path.is_file() and not path.is_symlink():
                    files += 1
                    unpacked += path.stat().st_size
    except ArchiveTooLargeError:
        raise ArchiveTooLargeError(too_large_message(root, limit, patterns)) from None
    return Archive(bytes(sink.buffer), files, unpacked, tuple(skipped))


def largest_entries(root: Path, patterns: Sequence[str], count: int = 5) -> list[tuple[str, int]]:
    """The `count` biggest top-level entries of `root` (directories summed), largest first."""
    sizes: dict[str, int] = {}
    for relative, path in walk(root, patterns):
        if path.is_file() and not path.is_symlink():
            top = relative.split("/", 1)[0] + ("/" if "/" in relative else "")
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:count]


def too_large_message(root: Path, limit: int, patterns: Sequence[str]) -> str:
    entries = largest_entries(root, patterns)
    biggest = ", ".join(f"{name} ({megabytes(size)})" for name, size in entries)
    return (
        f"{root} is more than {megabytes(limit)} compressed, the scheduler's upload limit "
        f"(MESOS_GPU_UPLOAD_MAX_MB). Largest: {biggest or 'nothing'}. Leave files out with --exclude PATTERN "
        f"or a line in {IGNORE_FILE} (e.g. `data/` or `*.ckpt`), run from a smaller directory, or use "
        "--no-upload when the files are already on the agents."
    )
