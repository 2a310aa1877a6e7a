"""The share host's fetcher (a small Mesos fetcher): each CommandInfo.URI of a share task into its
sandbox: http(s) downloads and file copies (`file://` or a plain path), `output_file` as the name,
`executable` (chmod 0755, never extracted) and `extract` (default true, as Mesos': tar, tar.gz/tgz,
tar.bz2, tar.xz and zip archives are unpacked into the sandbox, refusing members that leave it).
Unlike Mesos' fetcher, an http(s) download refused or answered 5xx is tried again for up to
`FETCH_RETRY_SECONDS`: the launcher is served by the scheduler, which may be failing over (the fault soak
saw share tasks fail because the leader that launched them was killed a moment before their fetch).

    fetch_uris([{"value": "http://scheduler/v1/uploads/abc.tar.gz"}], "/sandbox/tasks/t1")
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
FETCH_TIMEOUT = 60.0
FETCH_RETRY_SECONDS = 20.0  # how long a refused or 5xx download is tried again


class FetchError(Exception):
    """A URI that cannot be fetched or extracted; the message names it."""


def fetch_uris(
    uris: Iterable[Mapping[str, Any]], directory: str, note: Callable[[str], None] = lambda line: None,
    *, retry_seconds: float = FETCH_RETRY_SECONDS,
) -> list[str]:
    """Fetch every URI into `directory`; the paths written. `note` gets one line per URI (the sandbox's
    stderr, as Mesos' fetcher writes)."""
    written = []
    os.makedirs(directory, exist_ok=True)
    for uri in uris:
        value = str(uri.get("value") or "")
        if not value:
            raise FetchError("a URI without a value")
        parsed = urllib.parse.urlparse(value)
        name = str(uri.get("output_file") or os.path.basename(parsed.path) or "download")
        if "/" in name or name in (".", ".."):
            raise FetchError(f"Invalid output file '{name}' for URI '{value}'")
        target = os.path.join(directory, name)
        try:
            if parsed.scheme in ("http", "https"):
                _download(value, target, retry_seconds)
            elif parsed.scheme in ("", "file"):
                shutil.copyfile(urllib.parse.unquote(parsed.path) if parsed.scheme else value, target)
            else:
                raise FetchError(f"Unsupported URI scheme '{parsed.scheme}' in '{value}'")
        except OSError as exc:
            raise FetchError(f"Failed to fetch '{value}': {exc}") from exc
        if uri.get("executable"):
            os.chmod(target, 0o755)
        elif uri.get("extract", True) and name.endswith(ARCHIVE_SUFFIXES):
            _extract(target, directory, name)
        note(f"Fetched '{value}' to '{target}'")
        written.append(target)
    return written


def _download(value: str, target: str, retry_seconds: float) -> None:
    """`value` into `target`; a refused connection, a timeout or a 5xx answer is tried again (backoff
    from 0.2 s doubling to 2 s) until `retry_seconds` have passed; a 4xx answer, or an error writing
    `target`, fails at once."""
    deadline = time.monotonic() + retry_seconds
    delay = 0.2
    while True:
        try:
            with (
                urllib.request.urlopen(value, timeout=FETCH_TIMEOUT) as response,
                open(target, "wb") as out,
            ):
                shutil.copyfileobj(response, out)
            return
        except urllib.error.HTTPError as exc:
            exc.close()     # its answer's socket
            if exc.code < 500 or time.monotonic() + delay > deadline:
                raise
        except (urllib.error.URLError, ConnectionError, TimeoutError):   # the network, not the sandbox
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _extract(archive: str, directory: str, name: str) -> None:
    try:
        if name.endswith(".zip"):
            shutil.unpack_archive(archive, directory, "zip")  # zipfile refuses members outside
        else:
            shutil.unpack_archive(archive, directory, "tar", filter="data")
    except (OSError, ValueError, shutil.ReadError, tarfile.TarError) as exc:
        raise FetchError(f"Failed to extract '{name}': {exc}") from exc
