"""A tiny HTTP server in a thread for client tests: records each request (method, path, headers) and
answers with what `answer(method, path, headers)` returns: (status, JSON body) or (status, JSON body,
extra headers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, str, dict[str, str]], tuple[Any, ...]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeApi:
    url: str
    requests: list[Recorded] = field(default_factory=list)


@contextmanager
def fake_api(answer: Answer) -> Iterator[FakeApi]:
    """A running server at `FakeApi.url` (stopped on exit)."""
    api = FakeApi("")

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.requests.append(Recorded(self.command, self.path, headers))
            status, body, *extra = answer(self.command, self.path, headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    with http_thread(Handler) as port:
        api.url = f"http://127.0.0.1:{port}"
        yield api


@contextmanager
def http_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """`handler` served on a loopback port in a thread (the port yielded; stopped on exit)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def unauthorized(method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """What the API answers without a valid token."""
    return 401, {"error": {"code": "unauthorized", "message": "a valid bearer token is required",
                           "details": []}}
