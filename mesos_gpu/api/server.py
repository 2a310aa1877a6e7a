"""`ApiServer`: serve a tornado application on its own IOLoop thread (for `mesos-gpu local`, the
scheduler process, tests and benchmarks). Bind first (`bind()` gives the port, e.g. for the launcher
URL), then `start(app)`; `stop()` closes the listener and the loop.

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
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.ioloop import IOLoop

from mesos_gpu.api.app import close_app
from mesos_gpu.loopcall import call_in_loop

T = TypeVar("T")
START_TIMEOUT = 30.0


class ApiServer:
    """An HTTP server for one application, on a daemon thread with its own IOLoop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._sockets: list[socket.socket] = []
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._app: tornado.web.Application | None = None

    def bind(self) -> int:
        """Open the listening socket(s) now; return the port (the free one chosen when port was 0)."""
        if not self._sockets:
            self._sockets = tornado.netutil.bind_sockets(self.port, self.host, backlog=1024)
            self.port = int(self._sockets[0].getsockname()[1])
        return self.port

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
                server = tornado.httpserver.HTTPServer(app, xheaders=True, idle_connection_timeout=300)
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
