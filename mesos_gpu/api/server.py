"""`ApiServer`: serve a tornado application on its own IOLoop thread (for `mesos-gpu local`, the
scheduler process, tests and benchmarks). Bind first (`bind()` gives the port, e.g. for the launcher
URL), then `start(app)`; `stop()` closes the listener and the loop.

Slow and idle clients are bounded: a connection that has not sent a whole request head within
IDLE_TIMEOUT seconds (idle keep-alive, or headers dripped a byte at a time) is closed, and so is one
whose body takes over BODY_TIMEOUT seconds (uploads allow theirs longer); a request head is at most
MAX_HEADER_BYTES. Open connections are capped below the process's file-descriptor limit
(`connection_cap`), where tornado would otherwise fail every accept (EMFILE) in a busy loop, logging each
failure and starving the rest of the process of descriptors. At the cap, the connection that has waited
longest for a request head (idle, or a head still dripping in) is closed to make room; only when every
connection is inside a request is a new one answered 503 (JSON, `Retry-After: 1`) and closed.

Example::

    server = ApiServer("127.0.0.1", 0)
    port = server.bind()
    server.start(make_app(runtime, settings=..., launcher_bundle=..., master_url=...))
    ...
    server.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import resource
import socket
import threading
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tornado.http1connection
import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.netutil
import tornado.web
from tornado.ioloop import IOLoop

from mesos_gpu.api.app import close_app
from mesos_gpu.api.requests import DRAIN_BYTES, MAX_BODY_BYTES
from mesos_gpu.core.errors import UnavailableError
from mesos_gpu.loopcall import call_in_loop

log = logging.getLogger(__name__)
T = TypeVar("T")
START_TIMEOUT = 30.0
#: Seconds a connection may take to send a whole request head, idle keep-alive time included.
IDLE_TIMEOUT = 60.0
#: Seconds a request body may take to arrive (job documents; see uploads.UPLOAD_BODY_TIMEOUT).
BODY_TIMEOUT = 60.0
#: The largest request head (request line and headers); a larger one is closed by tornado unanswered.
MAX_HEADER_BYTES = 64 * 1024
#: Most open connections; lowered to the descriptor limit less FD_RESERVE (see `connection_cap`).
MAX_CONNECTIONS = 10_000
#: Descriptors kept for everything else the process opens (ZooKeeper, the master, files, threads).
FD_RESERVE = 128


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    """`wanted`, lowered to leave FD_RESERVE (or a quarter, when the limit is small) of the process's
    soft descriptor limit (RLIMIT_NOFILE) free; at least 16."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - max(min(FD_RESERVE, soft // 4), 8)))


def _busy_answer(limit: int) -> bytes:
    error = UnavailableError(f"this scheduler has {limit} open connections, its limit; retry soon")
    body = json.dumps(error.to_dict(), separators=(",", ":")).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _close(stream: tornado.iostream.IOStream, written: Future[None]) -> None:
    if not written.cancelled():
        written.exception()  # a client gone before the answer: nothing to report
    stream.close()


class _CappedHTTPServer(tornado.httpserver.HTTPServer):
    """tornado's HTTPServer with at most `max_connections` connections open (see the module's text).
    At the cap the connection that has waited longest for a request head (idle keep-alive, or a head
    still dripping in) is closed to make room, as nginx reuses idle connections; only when every
    connection is inside a request is the new one refused (503)."""

    def initialize(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.open_connections = 0
        self.evicted_connections = 0
        self.refused_connections = 0
        self._busy = _busy_answer(max_connections)
        # connections waiting for a request head, longest-waiting first (dicts keep insertion order)
        self._waiting: dict[tornado.http1connection.HTTP1ServerConnection, None] = {}

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        if self.open_connections >= self.max_connections and not self._evict_one():
            self.refused_connections += 1
            if self.refused_connections in (1, 10, 100) or self.refused_connections % 1000 == 0:
                log.warning("API at its limit of %d open connections, all in a request: refused %d so far",
                            self.max_connections, self.refused_connections)
            stream.write(self._busy).add_done_callback(lambda written: _close(stream, written))
            return
        self.open_connections += 1
        super().handle_stream(stream, address)

    def _evict_one(self) -> bool:
        for connection in self._waiting:
            del self._waiting[connection]
            connection.stream.close()  # its on_close follows, counting it out
            self.evicted_connections += 1
            if self.evicted_connections in (1, 10, 100) or self.evicted_connections % 1000 == 0:
                log.warning("API at its limit of %d open connections: closed %d waiting ones to make room",
                            self.max_connections, self.evicted_connections)
            return True
        return False

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        assert isinstance(server_conn, tornado.http1connection.HTTP1ServerConnection)
        self._waiting.pop(server_conn, None)
        self._waiting[server_conn] = None  # the newest waiter
        delegate = super().start_request(server_conn, request_conn)
        return _HeadWatch(delegate, lambda: self._waiting.pop(server_conn, None))

    def on_close(self, server_conn: object) -> None:
        self._waiting.pop(server_conn, None)  # type: ignore[call-overload]
        self.open_connections -= 1
        super().on_close(server_conn)


class _HeadWatch(tornado.httputil.HTTPMessageDelegate):
    """Passes a request through, telling `arrived` when its head is in (its connection no longer waits)."""

    def __init__(self, inner: tornado.httputil.HTTPMessageDelegate, arrived: Callable[[], object]) -> None:
        self.inner = inner
        self.arrived = arrived

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.arrived()
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


class ApiServer:
    """An HTTP server for one application, on a daemon thread with its own IOLoop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.body_timeout = body_timeout
        self.max_connections = connection_cap(max_connections)
        self._sockets: list[socket.socket] = []
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _CappedHTTPServer | None = None
        self._app: tornado.web.Application | None = None

    def bind(self) -> int:
        """Open the listening socket(s) now; return the port (the free one chosen when port was 0)."""
        if not self._sockets:
            self._sockets = tornado.netutil.bind_sockets(self.port, self.host, backlog=1024)
            self.port = int(self._sockets[0].getsockname()[1])
        return self.port

    @property
    def open_connections(self) -> int:
        """Connections open now (0 before `start`)."""
        return self._server.open_connections if self._server is not None else 0

    def connections(self) -> dict[str, int]:
        """Connections: "open" now, "waiting" for a request head now, and since the start "evicted" (a
        waiting one closed at the cap to make room) and "refused" (503 at the cap)."""
        server = self._server
        if server is None:
            return {"open": 0, "waiting": 0, "evicted": 0, "refused": 0}
        return {"open": server.open_connections, "waiting": len(server._waiting),
                "evicted": server.evicted_connections, "refused": server.refused_connections}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, app: tornado.web.Application) -> ApiServer:
        self.bind()
        self._app = app
        ready: concurrent.futures.Future[IOLoop] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            loop = IOLoop.current()
            try:
                server = _CappedHTTPServer(
                    app,
                    xheaders=True,
                    idle_connection_timeout=self.idle_timeout,
                    body_timeout=self.body_timeout,
                    max_header_size=MAX_HEADER_BYTES,
                    max_body_size=MAX_BODY_BYTES + DRAIN_BYTES,  # endpoints set their own (uploads)
                    max_connections=self.max_connections,
                )
                server.add_sockets(self._sockets)
                self._server = server
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(loop)
            try:
                loop.start()
            finally:
                loop.close(all_fds=True)

        self._thread = threading.Thread(target=run, name=f"mesos-gpu-api-{self.port}", daemon=True)
        self._thread.start()
        self._loop = ready.result(START_TIMEOUT)
        return self

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = START_TIMEOUT) -> T:
        """Run `fn(*args)` on the server's loop and return its result."""
        loop = self._loop
        assert loop is not None, "ApiServer.start() first"
        return call_in_loop(loop, fn, *args, timeout=timeout)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():

            def shutdown() -> None:
                if self._server is not None:
                    self._server.stop()
                loop.stop()

            loop.add_callback(shutdown)
            thread.join(START_TIMEOUT)
        elif self._sockets:
            for sock in self._sockets:
                sock.close()
        self._sockets = []
        self._loop = None
        self._thread = None
        if self._app is not None:
            close_app(self._app)
            self._app = None

    def __enter__(self) -> ApiServer:
        self.bind()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
