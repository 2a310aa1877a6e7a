"""The share host's fetcher tries a refused or 5xx download again for a while: the launcher is served by
the scheduler, which may be failing over (the long soak: 11 share jobs FAILED because the leader that
launched them was killed a moment before their fetch); a 4xx fails at once, as before."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolator.fetcher import FetchError, fetch_uris
from mesos_gpu.local.zookeeper import free_port


class Handler(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_GET(self) -> None:
        code = self.answers.pop(0) if self.answers else 200
        self.send_response(code)
        body = b"launcher" if code == 200 else b"no"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: http.server.ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def serving(port: int) -> Iterator[None]:
    server = serve(port)
    try:
        yield
    finally:
        stop(server)


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()
    Handler.answers = []


def test_a_download_refused_until_the_server_is_back_is_fetched(tmp_path: Path, port: int) -> None:
    servers: list[http.server.ThreadingHTTPServer] = []
    later = threading.Timer(1.0, lambda: servers.append(serve(port)))
    later.start()
    started = time.monotonic()
    try:
        (path,) = fetch_uris([{"value": f"http://127.0.0.1:{port}/v1/launcher.pyz"}], str(tmp_path))
        assert Path(path).read_bytes() == b"launcher"
        assert time.monotonic() - started >= 0.9
    finally:
        later.join()
        for server in servers:
            stop(server)


def test_a_5xx_is_tried_again_and_a_4xx_is_not(tmp_path: Path, port: int) -> None:
    with serving(port):
        Handler.answers = [503, 502]
        (path,) = fetch_uris([{"value": f"http://127.0.0.1:{port}/a"}], str(tmp_path))
        assert Path(path).read_bytes() == b"launcher"
        Handler.answers = [404]
        started = time.monotonic()
        with pytest.raises(FetchError, match="404"):
            fetch_uris([{"value": f"http://127.0.0.1:{port}/b"}], str(tmp_path))
        assert time.monotonic() - started < 1.0


def test_a_server_that_stays_away_fails_after_the_retry_window(tmp_path: Path, port: int) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="Failed to fetch"):
        fetch_uris([{"value": f"http://127.0.0.1:{port}/a"}], str(tmp_path), retry_seconds=1.0)
    assert 0.5 <= time.monotonic() - started < 3.0


def test_an_error_writing_the_sandbox_is_not_tried_again(tmp_path: Path, port: int) -> None:
    with serving(port):
        (tmp_path / "a").mkdir()     # the target is a directory: the download cannot be written
        started = time.monotonic()
        with pytest.raises(FetchError, match="Failed to fetch"):
            fetch_uris([{"value": f"http://127.0.0.1:{port}/a"}], str(tmp_path))
        assert time.monotonic() - started < 1.0
