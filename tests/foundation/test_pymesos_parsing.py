"""pymesos's own `Connection.read()` parses a recorded Mesos v1 event stream identically however TCP
splits it: at every single split point and under thousands of random multi-splits.

The stream is written by a real loopback TCP peer, fragment by fragment, and read by an unmodified
`pymesos.process.Connection` (which uses our compat `http_parser.http.HttpParser`).
"""

from __future__ import annotations

import itertools
import json
import random
import select
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pymesos.process import Connection

STREAM_ID = "4f1b3a6e-8d2c-4b7a-9e51-0c2d3e4f5a6b"

RESPONSE_HEADERS = [
    ("Date", "Sat, 21 Nov 2026 14:10:00 GMT"),
    ("Content-Type", "application/json"),
    ("Mesos-Stream-Id", STREAM_ID),
    ("Transfer-Encoding", "chunked"),
]


def _offer(n: int) -> dict[str, Any]:
    return {
        "id": {"value": f"5b9e0c1d-0000-4000-8000-000000000000-O{n}"},
        "framework_id": {"value": "5b9e0c1d-0000-4000-8000-000000000000-0000"},
        "agent_id": {"value": f"5b9e0c1d-0000-4000-8000-000000000000-S{n}"},
        "hostname": f"gpu-node-{n}",
        "url": {
            "scheme": "http",
            "address": {"hostname": f"gpu-node-{n}", "ip": "10.0.0.5", "port": 5051},
            "path": "/slave(1)",
        },
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 16}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64000}, "role": "*"},
            {"name": "gpus", "type": "SCALAR", "scalar": {"value": 4}, "role": "*"},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31000, "end": 32000}]},
                "role": "*",
            },
        ],
        "attributes": [{"name": "gpu_model", "type": "TEXT", "text": {"value": "H100"}}],
        "executor_ids": [],
    }


EVENTS: list[dict[str, Any]] = [
    {
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": {"value": "5b9e0c1d-0000-4000-8000-000000000000-0000"},
            "heartbeat_interval_seconds": 15.0,
            "master_info": {
                "id": "5b9e0c1d-0000-4000-8000-000000000000",
                "ip": 16777343,
                "port": 5050,
                "hostname": "localhost",
                "version": "1.11.0",
                "address": {"hostname": "localhost", "ip": "127.0.0.1", "port": 5050},
            },
        },
    },
    {"type": "HEARTBEAT"},
    {"type": "OFFERS", "offers": {"offers": [_offer(n) for n in range(3)]}},  # ~2.5 KB
    {
        "type": "UPDATE",
        "update": {
            "status": {
                "task_id": {"value": "job-1.worker-0"},
                "state": "TASK_RUNNING",
                "source": "SOURCE_EXECUTOR",
                "agent_id": {"value": "5b9e0c1d-0000-4000-8000-000000000000-S0"},
                "timestamp": 1700000000.5,
                "uuid": "AAECAwQFBgcICQoLDA0ODw==",
            }
        },
    },
    {"type": "HEARTBEAT"},
    {"type": "RESCIND", "rescind": {"offer_id": {"value": "5b9e0c1d-O1"}}},
    {"type": "ERROR", "error": {"message": "Framework failed over"}},
]


def _record(event: dict[str, Any]) -> bytes:
    data = json.dumps(event).encode()
    return str(len(data)).encode() + b"\n" + data


def _chunk(payload: bytes) -> bytes:
    return f"{len(payload):x}".encode() + b"\r\n" + payload + b"\r\n"


def recorded_stream() -> bytes:
    """Status line, headers, then RecordIO records in chunks: one record per chunk, several records
    in one chunk, and one record split across two chunks, ending with the last chunk."""
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in RESPONSE_HEADERS) + "\r\n"
    records = [_record(event) for event in EVENTS]
    body = _chunk(records[0])  # SUBSCRIBED alone
    body += _chunk(records[1] + records[2])  # HEARTBEAT and the large OFFERS in one chunk
    split = len(records[3]) // 2
    body += _chunk(records[3][:split]) + _chunk(records[3][split:])  # UPDATE across two chunks
    body += _chunk(records[4] + records[5] + records[6])
    body += b"0\r\n\r\n"
    return head.encode() + body


class RecordingCallback:
    """The slice of pymesos's `Process` that `Connection` talks to."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.stream_id: str | None = None
        self.closed = False

    def gen_request(self) -> bytes:
        return b"POST /api/v1/scheduler HTTP/1.1\r\n\r\n"

    def process_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def change_master(self, master: str) -> None:  # pragma: no cover - a 307 is not in the stream
        raise AssertionError(f"unexpected redirect to {master}")

    def on_close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def _wait_readable(sock: socket.socket, timeout: float = 2.0) -> bool:
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


def feed(listener: socket.socket, fragments: Sequence[bytes]) -> tuple[RecordingCallback, Connection]:
    """Send `fragments` one by one from a real TCP peer; let pymesos read after each."""
    callback = RecordingCallback()
    conn = Connection(f"127.0.0.1:{listener.getsockname()[1]}", callback)
    peer, _ = listener.accept()
    try:
        results = []
        for fragment in fragments:
            peer.sendall(fragment)
            assert _wait_readable(conn._sock), "the fragment never arrived"
            results.append(conn.read())
            # A fragment larger than pymesos's recv size (PIPE_BUF) needs more than one read.
            while results[-1] and _wait_readable(conn._sock, 0.0):
                results.append(conn.read())
        assert all(results[:-1]), "pymesos gave up before the end of the stream"
        assert results[-1] is False, "the end of the chunked stream was not seen"
        return callback, conn
    finally:
        peer.close()
        conn._sock.close()


def split_at(data: bytes, points: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def check(callback: RecordingCallback, conn: Connection) -> None:
    assert callback.events == EVENTS
    assert callback.stream_id == STREAM_ID
    assert conn.stream_id == STREAM_ID
    # pymesos upper-cases header names itself; names compare case-insensitively, values exactly.
    headers = {name.upper(): value for name, value in conn._parser.get_headers().items()}
    assert headers == {name.upper(): value for name, value in RESPONSE_HEADERS}


def test_the_whole_stream_in_one_piece(listener: socket.socket) -> None:
    check(*feed(listener, [recorded_stream()]))


def test_every_single_split_point(listener: socket.socket) -> None:
    data = recorded_stream()
    for point in range(1, len(data)):
        callback, conn = feed(listener, split_at(data, [point]))
        try:
            check(callback, conn)
        except AssertionError as exc:
            raise AssertionError(f"split at byte {point} ({data[:point][-20:]!r}|...): {exc}") from exc


def test_random_multi_splits(listener: socket.socket) -> None:
    data = recorded_stream()
    rng = random.Random(20261121)
    for attempt in range(3000):
        k = rng.choice([2, 3, 5, 10, 40, 200])
        points = rng.sample(range(1, len(data)), k)
        callback, conn = feed(listener, split_at(data, points))
        try:
            check(callback, conn)
        except AssertionError as exc:
            raise AssertionError(f"attempt {attempt}, splits {sorted(points)}: {exc}") from exc


def test_byte_by_byte(listener: socket.socket) -> None:
    data = recorded_stream()
    check(*feed(listener, [data[i : i + 1] for i in range(len(data))]))


def test_import_pymesos_is_clean_under_warnings_as_errors() -> None:
    code = "import pymesos, pymesos.process, http_parser.http; print(pymesos.process.HttpParser.__module__)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", "-B", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http_parser.http"
    assert result.stderr == ""
