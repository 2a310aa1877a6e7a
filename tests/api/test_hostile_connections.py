"""Slow and idle clients against the real API on a loopback port (issue 17, "Bad input"): headers
dripped a byte at a time (slowloris), a body dripped the same way, a client that stops reading its
answer, a request head over the limit, 1,000 idle connections and the connection cap. The server closes
slow, stalled and idle connections after its (here shortened) timeouts; at its cap it closes the
longest-waiting idle connection to make room, and answers 503 in JSON only when every connection is
inside a request; other clients are answered quickly meanwhile (their GET latency is measured while the
attack runs)."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mesos_gpu.api.server import ApiServer, connection_cap
from tests.api.rawhttp import closed_by_server, exchange, get_latencies, read_answer, request_bytes, serving
from tests.api.spec import check

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 1.0  # the servers' idle and body timeouts here (the defaults are 60 s)
SLACK = 3.0  # what a loaded 2-core machine may add to a timeout before the close is seen
LATENCY_BOUND = 2.0


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with serving(idle_timeout=TIMEOUT, body_timeout=TIMEOUT) as server:
        yield server


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@contextlib.contextmanager
def dripping(socks: list[socket.socket], data: bytes, every: float = 0.1) -> Iterator[None]:
    """Send `data` one byte every `every` seconds on each of `socks`, until the server closes it or
    the block ends."""
    stop = threading.Event()

    def drip() -> None:
        for byte in data:
            for sock in list(socks):
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    socks.remove(sock)
            if stop.wait(every) or not socks:
                return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_slowloris_headers_are_cut_after_the_idle_timeout_and_others_are_served(api: ApiServer) -> None:
    slow = [connect(api.port) for _ in range(50)]
    watched = list(slow)
    started = time.monotonic()
    with dripping(slow, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000):
        latencies = get_latencies(api.port, 20)
        assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]
        deadline = started + TIMEOUT + SLACK
        assert all(closed_by_server(sock, deadline) for sock in watched)
    assert time.monotonic() - started >= TIMEOUT * 0.9  # closed by the timeout, not at once
    for sock in watched:
        sock.close()


def test_a_dripped_body_is_cut_after_the_body_timeout(api: ApiServer) -> None:
    slow = [connect(api.port) for _ in range(20)]
    watched = list(slow)
    head = request_bytes("POST", "/v1/jobs", headers={"Content-Length": "5000"})
    for sock in slow:
        sock.sendall(head)
    started = time.monotonic()
    with dripping(slow, b'{"name": "a", "command": "' + b"x" * 4000):
        latencies = get_latencies(api.port, 20)
        assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]
        assert all(closed_by_server(sock, started + TIMEOUT + SLACK) for sock in watched)
    for sock in watched:
        sock.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(api: ApiServer) -> None:
    with connect(api.port) as sock:
        sock.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(sock).status == 200
        started = time.monotonic()
        assert closed_by_server(sock, started + TIMEOUT + SLACK)
        assert time.monotonic() - started >= TIMEOUT * 0.9


def test_a_request_head_over_the_limit_is_closed_at_once(api: ApiServer) -> None:
    answer = exchange(api.port, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert answer.closed and answer.status in (0, 400)  # tornado closes it (or answers a bare 400)
    assert max(get_latencies(api.port, 3)) < LATENCY_BOUND


def _archive(size: int) -> bytes:
    """A gzipped tar holding `size` random (incompressible) bytes."""
    data, buffer = os.urandom(size), io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=0) as archive:
        member = tarfile.TarInfo("noise.bin")
        member.size = size
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("what", ["launcher", "upload"])
def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(what: str) -> None:
    """16 MB answered to a client that reads nothing: once the socket buffers are full the server
    waits `write_timeout` (1 s here), then closes the connection instead of holding it forever."""
    big = 16 << 20
    with serving(launcher=os.urandom(big), write_timeout=TIMEOUT) as server:
        path = "/v1/launcher.pyz"
        if what == "upload":
            archive = _archive(big)
            answer = exchange(server.port, request_bytes("POST", "/v1/uploads", archive,
                                                         {"Content-Type": "application/gzip"}))
            assert answer.status == 201, answer.body
            path = f"/v1/uploads/{answer.json()['sha256']}.tar.gz"
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            started = time.monotonic()
            latencies = get_latencies(server.port, 10)
            assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]
            while server.open_connections > 0:  # ours, until the server gives up on it
                assert time.monotonic() - started < TIMEOUT + SLACK, server.open_connections
                time.sleep(0.02)  # polling the count with a deadline
            assert time.monotonic() - started >= TIMEOUT * 0.9
        finally:
            sock.close()


def _descriptors_for(count: int) -> None:
    """Raise this process's soft descriptor limit so it can hold both ends of `count` connections
    (restored by the caller's fixture); skip when the hard limit does not allow it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * count + 512
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the descriptor limit ({hard}) cannot hold {count} connections in one process")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.fixture
def descriptor_limit() -> Iterator[None]:
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def test_1000_idle_connections_leave_others_served_quickly(descriptor_limit: None) -> None:
    _descriptors_for(1000)
    with serving(idle_timeout=30.0) as server:
        idle = [connect(server.port) for _ in range(1000)]
        try:
            before = time.monotonic()
            while server.open_connections < 1000:
                assert time.monotonic() - before < 20, server.open_connections
                time.sleep(0.01)  # polling the count with a deadline
            latencies = get_latencies(server.port, 30)
            assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]
            # the idle ones were all accepted and are still open (nothing was answered to them)
            assert all(not closed_by_server(sock, time.monotonic() + 0.001) for sock in idle[:20])
        finally:
            for sock in idle:
                sock.close()


def _until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)  # polling with a deadline


def test_at_the_cap_the_longest_waiting_connections_make_room_for_new_clients() -> None:
    with serving(idle_timeout=30.0, max_connections=50) as server:
        assert server.max_connections == 50
        idle = []
        for _ in range(50):
            idle.append(connect(server.port))
            _until(lambda: server.open_connections == len(idle), "each idle connection accepted in turn")
        latencies = get_latencies(server.port, 20)  # the first evicts the longest-waiting idle one
        assert max(latencies) < LATENCY_BOUND, sorted(latencies)[-3:]
        assert server.connections()["evicted"] >= 1 and server.connections()["refused"] == 0
        assert closed_by_server(idle[0], time.monotonic() + SLACK)  # the oldest went first
        assert not closed_by_server(idle[-1], time.monotonic() + 0.05)  # the newest is still open
        for sock in idle:
            sock.close()


def test_at_the_cap_with_every_connection_in_a_request_a_new_client_gets_a_json_503() -> None:
    with serving(idle_timeout=30.0, body_timeout=30.0, max_connections=50) as server:
        busy = [connect(server.port) for _ in range(50)]
        try:
            for sock in busy:  # a head, and a body that never comes: each is inside a request
                sock.sendall(request_bytes("POST", "/v1/jobs", headers={"Content-Length": "100"}))
            _until(lambda: server.connections()["open"] == 50 and server.connections()["waiting"] == 0,
                   "every connection inside its request")
            answer = exchange(server.port, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.status == 503 and answer.headers.get("retry-after") == "1"
            assert check("Error", answer.body)["error"]["code"] == "unavailable"
            assert server.connections()["refused"] >= 1
        finally:
            for sock in busy:
                sock.close()
        _until(lambda: server.open_connections == 0, "the busy connections closed")
        assert get_latencies(server.port, 1)  # served again


@pytest.mark.parametrize(("soft", "wanted", "cap"), [(1024, 10_000, 896), (20_000, 10_000, 10_000),
                                                     (256, 10_000, 192), (64, 10_000, 48), (20, 10, 16)])
def test_the_connection_cap_stays_below_the_descriptor_limit(
    descriptor_limit: None, soft: int, wanted: int, cap: int
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < soft:
        pytest.skip(f"hard descriptor limit {hard} < {soft}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert connection_cap(wanted) == cap
