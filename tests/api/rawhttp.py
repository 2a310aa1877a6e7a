"""Raw HTTP/1.1 over a socket for the hostile-input tests: send exactly the bytes a hostile client
sends (bad lengths, invalid UTF-8, dripped headers) and read what the server answers, or see it close.
Also a real API server on a loopback port (`serving`) and a GET-latency probe (`get_latencies`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mesos_gpu.api.app import make_app
from mesos_gpu.api.server import ApiServer
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import LAUNCHER, make_runtime, started


@dataclass
class Answer:
    """What the server sent back: status (0: nothing), headers (lower-case names), body; `closed` when
    it closed the connection (or reset it) instead of or after answering."""

    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def read_answer(sock: socket.socket, timeout: float = 20.0) -> Answer:
    """Read one response (Content-Length delimited) from `sock`, or what came before it closed."""
    sock.settimeout(timeout)
    data, closed = b"", False
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = [line.split(b":", 1)[1] for line in head.split(b"\r\n")[1:]
                      if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= int(length[0]):
                break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/1.") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(status, headers, body, closed)


def exchange(port: int, data: bytes, timeout: float = 20.0) -> Answer:
    """Send `data` on a new connection (a send cut short by the server closing is not an error:
    what it answered is still read) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
        return read_answer(sock, timeout)


def request_bytes(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A request with `Content-Type: application/json` and `Content-Length` unless `headers` says
    otherwise (a value of "" leaves that header out)."""
    fields = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body)),
              "Connection": "close", **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v)
    return head.encode("latin-1") + b"\r\n" + body


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes `sock` before `deadline` (time.monotonic()), reading what it sends."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def get_latencies(port: int, count: int, path: str = "/v1/jobs?limit=1") -> list[float]:
    """Seconds each of `count` GETs took (each on a new connection, as a new client would), asserting
    every one answered 200."""
    latencies = []
    for _ in range(count):
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        finally:
            conn.close()
        latencies.append(time.monotonic() - start)
    return latencies


@contextlib.contextmanager
def serving(
    launcher: bytes = LAUNCHER,
    write_timeout: float | None = None,
    settings: SchedulerSettings | None = None,
    **server_options: Any,
) -> Iterator[ApiServer]:
    """The real API (a leading runtime on the in-memory store, an inert driver) on a loopback port;
    `server_options` go to ApiServer, `write_timeout` to the API's context."""
    runtime = started(make_runtime(MemoryStore(MemoryBackend())))
    app = make_app(runtime, settings=settings or SchedulerSettings(), launcher_bundle=launcher,
                   master_url="127.0.0.1:1")
    if write_timeout is not None:
        app.settings["api_context"].write_timeout = write_timeout
    server = ApiServer("127.0.0.1", 0, **server_options)
    server.start(app)
    try:
        yield server
    finally:
        server.stop()
        runtime.stop()
