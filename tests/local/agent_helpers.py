"""Test helpers for the local agent: an agent on its own IOLoop thread and a recording MasterLink."""

from __future__ import annotations

import asyncio
import base64
import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop

from mesos_gpu.local.agent.agent import Agent, AgentConfig
from mesos_gpu.loopcall import call_in_loop

FRAMEWORK_ID = "fw-0000"


def framework_info(
    framework_id: str = FRAMEWORK_ID, capabilities: tuple[str, ...] = (), **extra: Any
) -> dict:
    info = {"user": "test", "name": "agent-tests", "id": {"value": framework_id}}
    info["capabilities"] = [{"type": c} for c in capabilities]
    info.update(extra)
    return info


def command_task(task_id: str, value: str = "true", gpus: int = 0, **command: Any) -> dict:
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ]
    if gpus:
        resources.append({"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}})
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": "S0"},
        "resources": resources,
        "command": {"value": value, **command},
    }


class RecordingMaster:
    """A MasterLink that records every call (thread-safe) and, if asked, ACKs each update like a
    scheduler with implicit acknowledgements would (asynchronously, on the agent's loop)."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.agent: Agent | None = None
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._cond = threading.Condition()

    def _record(self, name: str, *args: Any) -> None:
        with self._cond:
            self.calls.append((name, args))
            self._cond.notify_all()

    def register_agent(self, agent: Agent) -> None:
        self.agent = agent
        self._record("register_agent", agent.agent_id)

    def unregister_agent(self, agent_id: str) -> None:
        self._record("unregister_agent", agent_id)

    def status_update(self, agent_id: str, framework_id: str, status: dict) -> None:
        self._record("status_update", agent_id, framework_id, json.loads(json.dumps(status)))
        if self.auto_ack and self.agent is not None and "uuid" in status:
            agent = self.agent
            agent.loop.add_callback(
                agent.acknowledge, framework_id, status["task_id"]["value"], status["uuid"]
            )

    def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data_b64: str) -> None:
        self._record("executor_message", agent_id, framework_id, executor_id, data_b64)

    def executor_exited(self, agent_id: str, framework_id: str, executor_id: str, wait_status: int) -> None:
        self._record("executor_exited", agent_id, framework_id, executor_id, wait_status)

    # -- queries

    def of(self, name: str) -> list[tuple[Any, ...]]:
        with self._cond:
            return [args for n, args in self.calls if n == name]

    def updates(self, task_id: str | None = None) -> list[dict]:
        return [
            args[2]
            for args in self.of("status_update")
            if task_id is None or args[2]["task_id"]["value"] == task_id
        ]

    def states(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.updates(task_id)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or predicate}: calls={self.calls!r}")
                self._cond.wait(min(left, 0.05))

    def wait_state(self, task_id: str, state: str, timeout: float = 10.0) -> dict:
        def found() -> dict | None:
            for u in self.updates(task_id):
                if u["state"] == state:
                    return u
            return None

        return self.wait_for(found, timeout, f"{task_id} {state}")


class AgentThread:
    """Runs one Agent on a private IOLoop thread, like LocalCluster does. Use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        config: AgentConfig | None = None,
        master: RecordingMaster | None = None,
        agent_id: str = "S0",
        **agent_kwargs: Any,
    ) -> None:
        self.workdir = workdir
        self.config = config or AgentConfig(cpus=2, mem=1024, disk=1024, docker="off")
        self.master = master if master is not None else RecordingMaster()
        self.agent_id = agent_id
        self.agent_kwargs = agent_kwargs
        self.agent: Agent
        self.ioloop: IOLoop
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-loop", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.ioloop = IOLoop.current()
            self.agent = Agent(self.master, self.agent_id, self.workdir, self.config, **self.agent_kwargs)
            self.agent.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def __enter__(self) -> AgentThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.agent.stop)
        finally:
            self.ioloop.add_callback(self._stop_loop)
            self._thread.join(10)

    def _stop_loop(self) -> None:
        asyncio.get_running_loop().stop()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run fn on the loop thread and return its result."""
        return call_in_loop(self.ioloop, fn, *args, timeout=10, **kwargs)

    @property
    def address(self) -> str:
        host, port = self.agent.endpoint()
        return f"{host}:{port}"

    def http(
        self, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        host, port = self.agent.endpoint()
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def decoded_uuid(status: dict) -> bytes:
    return base64.b64decode(status["uuid"])


def read_records(buffer: bytes) -> tuple[list[dict], bytes]:
    """Parse complete RecordIO records from a buffer; return them and the unparsed rest."""
    records = []
    while b"\n" in buffer:
        head, rest = buffer.split(b"\n", 1)
        length = int(head)
        if len(rest) < length:
            break
        records.append(json.loads(rest[:length]))
        buffer = rest[length:]
    return records, buffer


class GatedFileServer:
    """An HTTP server whose every GET waits until the test opens that path's gate: a URI fetch that
    stays in flight as long as a test needs. Use as a context manager; `url(name)` is a fetchable URI."""

    def __init__(self, body: bytes = b"payload\n", timeout: float = 10.0) -> None:
        self.body = body
        self.timeout = timeout
        self._cond = threading.Condition()
        self._gates: dict[str, threading.Event] = {}
        self.arrived: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                with server._cond:
                    server.arrived.append(name)
                    server._cond.notify_all()
                server.gate(name).wait(server.timeout)
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gated-http", daemon=True)

    def __enter__(self) -> GatedFileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            for gate in self._gates.values():
                gate.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def gate(self, name: str) -> threading.Event:
        with self._cond:
            return self._gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        """Let the fetch of `name` (now or later) complete."""
        self.gate(name).set()

    def wait_arrived(self, name: str, timeout: float = 5.0) -> None:
        """Until a fetch of `name` has reached the server (and waits at its gate)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while name not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no fetch of {name!r} reached the server: {self.arrived!r}")
                self._cond.wait(left)
