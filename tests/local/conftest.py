"""Shared fixtures for the local cluster tests: a fast `cluster`, a recording pymesos scheduler, a
`driver` factory that always stops its drivers, and a raw HTTP/RecordIO client for wire-level checks."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymesos  # imported in the main thread: it installs a SIGINT handler at import
import pytest

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.local.protocol import RecordIODecoder

WAIT = 10.0

FAST = dict(
    heartbeat_interval=0.5,
    status_update_retry=0.5,
    allocation_interval=0.1,
)


def make_cluster(tmp_path: Any, **kwargs: Any) -> LocalCluster:
    options = {**FAST, "agents": 2, "gpus_per_agent": 2, "workdir": tmp_path / "cluster"}
    options.update(kwargs)
    return LocalCluster(**options)


@pytest.fixture
def cluster(tmp_path: Any) -> Iterator[LocalCluster]:
    """Two agents with two simulated GPUs each; short heartbeat/retry/allocation intervals."""
    with make_cluster(tmp_path) as running:
        yield running


@pytest.fixture
def cluster_factory(tmp_path: Any) -> Iterator[Callable[..., LocalCluster]]:
    """Start clusters with custom options; all are stopped at the end of the test."""
    started: list[LocalCluster] = []

    def start(**kwargs: Any) -> LocalCluster:
        sub = tmp_path / f"c{len(started)}"
        running = make_cluster(sub, **kwargs).start()
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()


def framework_info(name: str = "conformance", gpu: bool = True, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"user": "nobody", "name": name}
    if gpu:
        info["capabilities"] = [{"type": "GPU_RESOURCES"}]
    info.update(extra)
    return info


class RecordingScheduler(pymesos.Scheduler):
    """Records every callback as (name, payload) and lets the test wait for them. Never raises."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self.on_offers: Callable[[Any, list[Any]], None] | None = None
        self.on_update: Callable[[Any, Any], None] | None = None
        self.decline_offers = False

    def _record(self, name: str, payload: Any) -> None:
        with self._cond:
            self.events.append((name, payload))
            self._cond.notify_all()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self._record("registered", {"framework_id": dict(framework_id), "master_info": dict(master_info)})

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._record("reregistered", dict(master_info))

    def disconnected(self, driver: Any) -> None:
        self._record("disconnected", None)

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:
        try:
            for offer in offers:
                self._record("offer", offer)
            if self.on_offers is not None:
                self.on_offers(driver, offers)
            elif self.decline_offers:
                driver.declineOffer([o["id"] for o in offers], {"refuse_seconds": 0.2})
        except Exception as exc:  # a callback must never raise (pymesos would TEARDOWN)
            self._record("callback_error", repr(exc))

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._record("rescinded", dict(offer_id))

    def statusUpdate(self, driver: Any, status: Any) -> None:
        self._record("update", status)
        if self.on_update is not None:
            try:
                self.on_update(driver, status)
            except Exception as exc:
                self._record("callback_error", repr(exc))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._record("message", {"executor_id": executor_id, "agent_id": agent_id, "data": data})

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._record("agent_lost", dict(agent_id))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._record("executor_lost", {"executor_id": executor_id, "agent_id": agent_id, "status": status})

    def error(self, driver: Any, message: str) -> None:
        self._record("error", message)

    def processHeartBeat(self, driver: Any) -> None:
        self._record("heartbeat", time.monotonic())

    # ------------------------------------------------------------------ waiting
    def wait_for(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        timeout: float = WAIT,
        after: int = 0,
    ) -> Any:
        """The payload of the first `name` event (from index `after`) matching `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event_name, payload in self.events[after:]:
                    if event_name == name and predicate(payload):
                        return payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [n for n, _ in self.events]
                    raise AssertionError(f"no {name!r} event within {timeout} s; got {names[-30:]}")
                self._cond.wait(remaining)

    def count(self, name: str) -> int:
        with self._cond:
            return sum(1 for n, _ in self.events if n == name)

    def payloads(self, name: str) -> list[Any]:
        with self._cond:
            return [p for n, p in self.events if n == name]

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def updates_for(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.payloads("update") if u["task_id"]["value"] == task_id]

    def wait_state(self, task_id: str, state: str, timeout: float = WAIT) -> Any:
        return self.wait_for(
            "update", lambda u: u["task_id"]["value"] == task_id and u["state"] == state, timeout
        )


@pytest.fixture
def driver_factory() -> Iterator[Callable[..., tuple[Any, RecordingScheduler]]]:
    """`start(master, framework_info=..., **driver_kwargs)` -> (started driver, recorder); every
    driver is stopped (with failover, so nothing is torn down twice) at the end."""
    drivers: list[Any] = []

    def start(
        master: str,
        info: dict[str, Any] | None = None,
        scheduler: RecordingScheduler | None = None,
        **kwargs: Any,
    ) -> tuple[Any, RecordingScheduler]:
        recorder = scheduler or RecordingScheduler()
        driver = pymesos.MesosSchedulerDriver(recorder, info or framework_info(), master, **kwargs)
        drivers.append(driver)
        driver.start()
        return driver, recorder

    yield start
    for driver in drivers:
        with contextlib.suppress(Exception):
            driver.stop(failover=True)
            driver.join()


def command_task(
    offer: Any,
    task_id: str | None = None,
    *,
    cmd: str = "true",
    cpus: float = 0.1,
    mem: float = 32,
    gpus: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
    ]
    if gpus:
        resources.append({"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}})
    task = {
        "name": task_id or "task",
        "task_id": {"value": task_id or str(uuid.uuid4())},
        "agent_id": {"value": offer["agent_id"]["value"]},
        "resources": resources,
        "command": {"value": cmd},
    }
    task.update(extra)
    return task


def scalar(offer: Any, name: str) -> float:
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


# ---------------------------------------------------------------------------------------------------
# raw wire client


class RawStream:
    """A SUBSCRIBE connection read by hand: status line, headers, chunked RecordIO events."""

    def __init__(
        self, address: str, body: dict[str, Any] | bytes | None = None, headers: dict[str, str] | None = None
    ) -> None:
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        payload = body if isinstance(body, bytes) else json.dumps(body or subscribe_body()).encode()
        head = {
            "Host": address,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Connection": "close",
            "Content-Length": str(len(payload)),
        }
        head.update(headers or {})
        request = (
            "POST /api/v1/scheduler HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        )
        self.sock.sendall(request.encode() + payload)
        self.buffer = b""
        self.decoder = RecordIODecoder()
        self.pending: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []
        self.ended = False
        self.status, self.headers = self._read_head()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        return data

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return status, headers

    def body_text(self) -> str:
        length = int(self.headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.buffer += self._recv()
        return self.buffer[:length].decode()

    def _next_chunk(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            self.buffer += self._recv()
        size_line, rest = self.buffer.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            rest += self._recv()
        chunk, self.buffer = rest[:size], rest[size + 2 :]
        if size == 0:
            self.ended = True
            return None
        self.chunks.append(chunk)
        return chunk

    def next_event(self, timeout: float = WAIT) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        while not self.pending:
            chunk = self._next_chunk()
            if chunk is None:
                raise EOFError("end of chunked body")
            self.pending.extend(self.decoder.feed(chunk))
        return self.pending.pop(0)

    def next_of(self, kind: str, timeout: float = WAIT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            if event["type"] == kind:
                return event

    def closed_by_server(self, timeout: float = WAIT) -> bool:
        """Read until EOF or the terminating chunk (True), or time out (False)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if self._next_chunk() is None:
                    return True
        except (EOFError, ConnectionResetError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def subscribe_body(framework_id: str | None = None, **info: Any) -> dict[str, Any]:
    fw = framework_info(**info) if info else framework_info()
    body: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": fw}}
    if framework_id:
        fw["id"] = {"value": framework_id}
        body["framework_id"] = {"value": framework_id}
    return body


class CallClient:
    """Non-SUBSCRIBE calls over one keep-alive connection, like pymesos' `_send`."""

    def __init__(self, address: str, stream_id: str | None = None) -> None:
        host, port = address.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
        self.stream_id = stream_id

    def post(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "/api/v1/scheduler",
    ) -> tuple[int, str, dict[str, str]]:
        head = {"Content-Type": "application/json"}
        if self.stream_id:
            head["Mesos-Stream-Id"] = self.stream_id
        head.update(headers or {})
        head = {k: v for k, v in head.items() if v is not None}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=head)
        response = self.conn.getresponse()
        text = response.read().decode()
        return response.status, text, {k.lower(): v for k, v in response.getheaders()}

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw_subscribe() -> Iterator[Callable[..., RawStream]]:
    streams: list[RawStream] = []

    def open_stream(address: str, body: Any = None, headers: dict[str, str] | None = None) -> RawStream:
        stream = RawStream(address, body, headers)
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


def get_json(address: str, path: str) -> tuple[int, Any, dict[str, str]]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, (json.loads(body) if body else None), headers
    finally:
        conn.close()


def drain(q: queue.Queue[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
