"""The local agent's v1 executor API (checklist 40-45, 47): raw HTTP for the exact wire behaviour, and
the unmodified pymesos.MesosExecutorDriver as a real subprocess executor."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from mesos_gpu.local import protojson
from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import (
    FRAMEWORK_ID,
    AgentThread,
    command_task,
    framework_info,
    read_records,
)

TEST_EXECUTOR = Path(__file__).with_name("agent_test_executor.py")
JSON_HEADERS = {"Content-Type": "application/json"}


def config(**kw) -> AgentConfig:
    base = dict(cpus=2, mem=1024, disk=1024, docker="off", executor_registration_timeout=30.0)
    base.update(kw)
    return AgentConfig(**base)


def executor_info(executor_id: str = "ex1", command: str = "sleep 30", **extra) -> dict:
    return {
        "type": "CUSTOM",
        "executor_id": {"value": executor_id},
        "name": executor_id,
        "command": {"value": command},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        **extra,
    }


def task_on(executor: dict, task_id: str, data: str | None = None, gpus: int = 0) -> dict:
    task = command_task(task_id, gpus=gpus)
    del task["command"]
    task["executor"] = executor
    if data is not None:
        task["data"] = base64.b64encode(data.encode()).decode()
    return task


def call_body(call_type: str, executor_id: str = "ex1", framework_id: str = FRAMEWORK_ID, **payload) -> bytes:
    body = {"type": call_type, "executor_id": {"value": executor_id}, "framework_id": {"value": framework_id}}
    body.update(payload)
    return json.dumps(body).encode()


def update_status(task_id: str, state: str = "TASK_RUNNING", **extra) -> dict:
    status = {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_EXECUTOR",
        "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
    }
    status.update(extra)
    return status


class RawStream:
    """A raw executor SUBSCRIBE connection: reads the chunked RecordIO stream by hand."""

    def __init__(self, address: str, body: bytes) -> None:
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(
            b"POST /api/v1/executor HTTP/1.1\r\nHost: " + address.encode() + b"\r\n"
            b"Content-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            self.raw += self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        self.body = b""
        self.records: list[dict] = []
        self.ended = False

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("stream closed")
        return data

    def _dechunk(self) -> None:
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.ended = True
            self.body += rest[:size]
            self.raw = rest[size + 2 :]

    def next(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            self._dechunk()
            records, self.body = read_records(self.body)
            self.records.extend(records)
            if self.records:
                event = self.records.pop(0)
                # Item 16: every event the agent sends an executor is a strictly valid executor.Event.
                assert protojson.strict_errors(event, "executor.Event") == [], event
                return event
            if self.ended:
                raise EOFError("stream ended")
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            self.raw += self._recv()

    def close(self) -> None:
        self.sock.close()


def subscribe_body(unacknowledged_tasks: list | None = None) -> bytes:
    return call_body(
        "SUBSCRIBE",
        subscribe={"unacknowledged_tasks": unacknowledged_tasks or [], "unacknowledged_updates": []},
    )


def test_item44_executor_api_errors_have_mesos_codes_and_texts(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        ex = executor_info()
        a.call(a.agent.launch, framework_info(), task=task_on(ex, "t1"))
        post = lambda body, headers=JSON_HEADERS: a.http("POST", "/api/v1/executor", body, headers)  # noqa: E731
        status, _, body = a.http("GET", "/api/v1/executor")
        assert (status, body) == (405, b"Expecting one of { 'POST' }, but received 'GET'")
        assert post(b"{}", {})[::2] == (400, b"Expecting 'Content-Type' to be present")
        assert post(b"{}", {"Content-Type": "text/plain"})[::2] == (
            415,
            b"Expecting 'Content-Type' of application/json or application/x-protobuf",
        )
        status, _, body = post(b"{nope")
        assert status == 400 and body.startswith(b"Failed to parse body into JSON: ")
        status, _, body = post(b'{"type": "SUBSCRIBE"}')
        assert status == 400 and body.startswith(
            b"Failed to convert JSON into Call protobuf: Missing required fields"
        )
        assert post(b'{"executor_id": {"value": "ex1"}, "framework_id": {"value": "x"}}')[::2] == (
            400,
            b"Failed to validate Executor::Call: Expecting 'type' to be present",
        )
        assert post(call_body("SUBSCRIBE"))[::2] == (
            400,
            b"Failed to validate Executor::Call: Expecting 'subscribe' to be present",
        )
        assert post(call_body("UPDATE"))[::2] == (
            400,
            b"Failed to validate Executor::Call: Expecting 'update' to be present",
        )
        assert post(call_body("HEARTBEAT"))[0] == 202
        assert post(subscribe_body().replace(FRAMEWORK_ID.encode(), b"other"))[::2] == (
            400,
            b"Framework cannot be found",
        )
        assert post(call_body("SUBSCRIBE", executor_id="nope", subscribe={}))[::2] == (
            400,
            b"Executor cannot be found",
        )
        message = call_body("MESSAGE", message={"data": "aGk="})
        assert post(message)[::2] == (403, b"Executor is not subscribed")
        status, _, body = a.http(
            "POST", "/api/v1/executor", subscribe_body(), {**JSON_HEADERS, "Accept": "application/xml"}
        )
        assert (status, body) == (
            406,
            b"Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        )

        stream = RawStream(a.address, subscribe_body())
        try:
            assert stream.next()["type"] == "SUBSCRIBED"
            bad_uuid = update_status("t1", uuid=base64.b64encode(b"short").decode())
            assert post(call_body("UPDATE", update={"status": bad_uuid}))[::2] == (
                400,
                b"Failed to validate Executor::Call: Not a valid UUID",
            )
            no_uuid = update_status("t1")
            del no_uuid["uuid"]
            assert post(call_body("UPDATE", update={"status": no_uuid}))[::2] == (
                400,
                b"Failed to validate Executor::Call: Expecting 'uuid' to be present",
            )
            wrong_source = update_status("t1", source="SOURCE_AGENT")
            assert post(call_body("UPDATE", update={"status": wrong_source}))[::2] == (
                400,
                b"Failed to validate Executor::Call: Received Call from executor ex1 of framework "
                b"fw-0000 with invalid source, expecting 'SOURCE_EXECUTOR'",
            )
            staging = update_status("t1", state="TASK_STAGING")
            assert post(call_body("UPDATE", update={"status": staging}))[::2] == (
                400,
                b"Failed to validate Executor::Call: Received TASK_STAGING from executor ex1 of "
                b"framework fw-0000 which is not allowed",
            )
            other_executor = update_status("t1", executor_id={"value": "zz"})
            assert post(call_body("UPDATE", update={"status": other_executor}))[::2] == (
                400,
                b"Failed to validate Executor::Call: ExecutorID in Call: ex1 does not match ExecutorID in "
                b"TaskStatus: zz",
            )
            assert a.master.updates() == []  # none of the bad updates went anywhere
        finally:
            stream.close()


def test_items42_43_44_subscribe_launch_update_acknowledged_message(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(executor_heartbeat_interval=0.2)) as a:
        ex = executor_info()
        fw = framework_info()
        a.call(a.agent.launch, fw, task=task_on(ex, "t1"))
        stream = RawStream(a.address, subscribe_body())
        try:
            assert stream.status == 200
            assert stream.headers["transfer-encoding"] == "chunked"
            assert stream.headers["content-type"] == "application/json"
            assert "mesos-stream-id" not in stream.headers and "content-length" not in stream.headers
            subscribed = stream.next()
            assert subscribed["type"] == "SUBSCRIBED"
            body = subscribed["subscribed"]
            assert body["executor_info"]["executor_id"] == {"value": "ex1"}  # pymesos' exact-dict asserts
            assert body["framework_info"]["id"] == {"value": FRAMEWORK_ID}
            agent_info = body["agent_info"]
            assert agent_info["hostname"] and agent_info["port"] == a.agent.port
            assert agent_info["id"] == {"value": "S0"}
            assert body["container_id"]["value"]
            launch = stream.next()
            assert launch["type"] == "LAUNCH" and launch["launch"]["task"]["task_id"] == {"value": "t1"}

            # a task for the running executor is delivered at once
            a.call(a.agent.launch, fw, task=task_on(ex, "t2"))
            assert stream.next()["launch"]["task"]["task_id"] == {"value": "t2"}

            status = update_status("t1", data=base64.b64encode(b"\x00\xff").decode())
            post = a.http(
                "POST", "/api/v1/executor", call_body("UPDATE", update={"status": status}), JSON_HEADERS
            )
            assert post[0] == 202 and post[2] == b""
            event = stream.next()
            while event["type"] == "HEARTBEAT":
                event = stream.next()
            assert event == {
                "type": "ACKNOWLEDGED",
                "acknowledged": {"task_id": {"value": "t1"}, "uuid": status["uuid"]},
            }
            assert len(base64.b64decode(event["acknowledged"]["uuid"])) == 16
            forwarded = a.master.wait_state("t1", "TASK_RUNNING")
            assert forwarded["agent_id"] == {"value": "S0"} and forwarded["executor_id"] == {"value": "ex1"}
            assert forwarded["uuid"] == status["uuid"] and forwarded["data"] == status["data"]
            assert forwarded["source"] == "SOURCE_EXECUTOR"
            assert forwarded["container_status"]["container_id"] == body["container_id"]

            # executor MESSAGE -> master; framework message -> executor MESSAGE
            a.http(
                "POST", "/api/v1/executor", call_body("MESSAGE", message={"data": "aGVsbG8="}), JSON_HEADERS
            )
            a.master.wait_for(lambda: a.master.of("executor_message"))
            assert a.master.of("executor_message") == [("S0", FRAMEWORK_ID, "ex1", "aGVsbG8=")]
            a.call(a.agent.framework_message, FRAMEWORK_ID, "ex1", "d29ybGQ=")
            event = stream.next()
            while event["type"] == "HEARTBEAT":
                event = stream.next()
            assert event == {"type": "MESSAGE", "message": {"data": "d29ybGQ="}}

            # checklist 47: heartbeats at the configured interval
            deadline = time.monotonic() + 5
            while stream.next()["type"] != "HEARTBEAT":
                assert time.monotonic() < deadline

            # KILL goes to the executor with the kill policy
            a.call(a.agent.kill_task, FRAMEWORK_ID, "t2", {"grace_period": {"nanoseconds": 1000}})
            event = stream.next()
            while event["type"] == "HEARTBEAT":
                event = stream.next()
            assert event == {
                "type": "KILL",
                "kill": {"task_id": {"value": "t2"}, "kill_policy": {"grace_period": {"nanoseconds": 1000}}},
            }
        finally:
            stream.close()

        # checklist 43: re-subscribe; t3 queued meanwhile; t2 is unacknowledged on the executor's side
        a.master.wait_for(lambda: a.call(lambda: a.agent.executors[(FRAMEWORK_ID, "ex1")].stream is None))
        a.call(a.agent.launch, fw, task=task_on(ex, "t3"))
        t2 = task_on(ex, "t2")
        stream = RawStream(a.address, subscribe_body([t2]))
        try:
            assert stream.next()["type"] == "SUBSCRIBED"
            launched = stream.next()
            assert launched["type"] == "LAUNCH" and launched["launch"]["task"]["task_id"] == {"value": "t3"}
            follow = stream.next(timeout=0.5) if stream.records else None
            assert follow is None or follow["type"] == "HEARTBEAT"
        finally:
            stream.close()


def test_launch_group_delivers_task_group_to_custom_executor(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        ex = executor_info("pod")
        tasks = [task_on(ex, "ps-0"), task_on(ex, "worker-0")]
        for t in tasks:
            del t["executor"]
        a.call(a.agent.launch, framework_info(), executor=ex, task_group={"tasks": tasks})
        stream = RawStream(a.address, call_body("SUBSCRIBE", executor_id="pod", subscribe={}))
        try:
            assert stream.next()["type"] == "SUBSCRIBED"
            group = stream.next()
            assert group["type"] == "LAUNCH_GROUP"
            launched = [t["task_id"]["value"] for t in group["launch_group"]["task_group"]["tasks"]]
            assert launched == ["ps-0", "worker-0"]
            running = a.call(a.agent.running)
            [entry] = [e for e in running if "executor" in e]
            assert entry["executor"]["executor_id"] == {"value": "pod"} and entry["tasks"] == [
                "ps-0",
                "worker-0",
            ]
            assert entry["executor"]["framework_id"] == {"value": FRAMEWORK_ID}
            assert sorted(e["task"]["task_id"]["value"] for e in running if "task" in e) == [
                "ps-0",
                "worker-0",
            ]
        finally:
            stream.close()


def default_group(*commands: tuple[str, str]) -> tuple[dict, dict]:
    ex = {"type": "DEFAULT", "executor_id": {"value": "pod"}, "framework_id": {"value": FRAMEWORK_ID}}
    return ex, {"tasks": [command_task(task_id, value) for task_id, value in commands]}


def test_launch_group_default_executor_runs_tasks_as_nested_containers(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        ex, group = default_group(("a", "echo A"), ("b", "sleep 0.2; echo B"))
        a.call(a.agent.launch, framework_info(), executor=ex, task_group=group)
        for task_id in ("a", "b"):
            final = a.master.wait_state(task_id, "TASK_FINISHED")
            assert a.master.states(task_id) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
            assert final["executor_id"] == {"value": "pod"}
        a.master.wait_for(lambda: a.master.of("executor_exited"))
        assert a.master.of("executor_exited") == [("S0", FRAMEWORK_ID, "pod", 0)]
        run = next((tmp_path / "agents/S0/frameworks" / FRAMEWORK_ID / "executors/pod/runs").glob("[!l]*"))
        assert (run / "tasks" / "b" / "stdout").read_text() == "B\n"
        status, _, body = a.http(
            "GET",
            f"/files/read?path=/frameworks/{FRAMEWORK_ID}/executors/pod/runs/latest/tasks/a/stdout&offset=0",
        )
        assert (status, json.loads(body)) == (200, {"data": "A\n", "offset": 0})


def test_launch_group_default_executor_kills_group_when_one_fails(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        ex, group = default_group(("bad", "sleep 0.2; exit 2"), ("long", "sleep 30"))
        a.call(a.agent.launch, framework_info(), executor=ex, task_group=group)
        assert a.master.wait_state("bad", "TASK_FAILED")["message"] == "Command exited with status 2"
        assert (
            a.master.wait_state("long", "TASK_KILLED")["message"]
            == "Command terminated with signal Terminated"
        )
        a.master.wait_for(lambda: a.master.of("executor_exited"))


def test_default_executor_task_whose_fetch_fails_leaves_the_pods_own_gpus(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=2)) as a:
        ex, group = default_group(("a", "true"), ("b", "sleep 30"))
        ex["resources"] = [{"name": "gpus", "type": "SCALAR", "scalar": {"value": 1}}]
        group["tasks"][0]["command"]["uris"] = [{"value": str(tmp_path / "missing.tar.gz")}]
        a.call(a.agent.launch, framework_info(), executor=ex, task_group=group)
        failed = a.master.wait_state("a", "TASK_FAILED")
        assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "Failed to fetch all URIs for container" in failed["message"]
        a.master.wait_state("b", "TASK_RUNNING")
        pod = a.call(lambda: a.agent.executors[(FRAMEWORK_ID, "pod")])
        assert a.call(a.agent.gpus.held, pod.container_id) == [0]


def test_item45_registration_timeout_kills_and_fails_tasks(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(executor_registration_timeout=0.3)) as a:
        a.call(a.agent.launch, framework_info(), task=task_on(executor_info(), "t1"))
        failed = a.master.wait_state("t1", "TASK_FAILED")
        assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
        assert failed["message"] == "Executor did not register within 300ms"
        assert failed["source"] == "SOURCE_AGENT" and failed["executor_id"] == {"value": "ex1"}
        a.master.wait_for(lambda: a.master.of("executor_exited"))
        assert a.master.of("executor_exited") == [("S0", FRAMEWORK_ID, "ex1", signal.SIGKILL)]


def test_item45_executor_exit_sends_failure_and_terminal_updates(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=task_on(executor_info(command="exit 3"), "t1"))
        failed = a.master.wait_state("t1", "TASK_FAILED")
        assert (failed["reason"], failed["message"]) == ("REASON_EXECUTOR_TERMINATED", "Executor terminated")
        a.master.wait_for(lambda: a.master.of("executor_exited"))
        assert a.master.of("executor_exited") == [("S0", FRAMEWORK_ID, "ex1", 3 << 8)]
        # the terminal update precedes the FAILURE, as on a real agent
        names = [n for n, _ in a.master.calls if n in ("status_update", "executor_exited")]
        assert names[-1] == "executor_exited"
        assert a.call(a.agent.running) == []


def test_item40_executor_environment(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=2, executor_shutdown_grace_period=5.0)) as a:
        ex = executor_info(command="env; sleep 30", shutdown_grace_period={"nanoseconds": 2_500_000_000})
        fw = framework_info(capabilities=("GPU_RESOURCES",), checkpoint=True)
        a.call(a.agent.launch, fw, task=task_on(ex, "t1", gpus=1))
        executor = a.call(lambda: a.agent.executors[(FRAMEWORK_ID, "ex1")])
        stdout = executor.sandbox.stdout
        a.master.wait_for(lambda: "MESOS_SLAVE_PID" in stdout.read_text(), what="env dump")
        time.sleep(0.1)
        env = dict(line.split("=", 1) for line in stdout.read_text().splitlines() if "=" in line)
        assert env["MESOS_AGENT_ENDPOINT"] == a.address
        assert env["MESOS_FRAMEWORK_ID"] == FRAMEWORK_ID and env["MESOS_EXECUTOR_ID"] == "ex1"
        assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == str(executor.sandbox.directory)
        assert os.path.realpath(env["PWD"]) == os.path.realpath(executor.sandbox.directory)
        assert env["MESOS_SLAVE_ID"] == "S0" and env["MESOS_SLAVE_PID"] == f"slave(1)@{a.address}"
        assert env["MESOS_CHECKPOINT"] == "1" and env["MESOS_HTTP_COMMAND_EXECUTOR"] == "0"
        assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "2.5secs"
        assert env["MESOS_RECOVERY_TIMEOUT"] == "15mins" and env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"
        assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == "0"
        from pymesos.utils import parse_duration

        assert parse_duration(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"]) == 2.5


def test_item40_no_checkpoint_sets_zero_and_no_recovery_vars(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=task_on(executor_info(command="env; sleep 30"), "t1"))
        stdout = a.call(lambda: a.agent.executors[(FRAMEWORK_ID, "ex1")].sandbox.stdout)
        a.master.wait_for(lambda: "MESOS_SLAVE_PID" in stdout.read_text(), what="env dump")
        time.sleep(0.1)
        env = dict(line.split("=", 1) for line in stdout.read_text().splitlines() if "=" in line)
        assert env["MESOS_CHECKPOINT"] == "0" and env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5secs"
        assert "MESOS_RECOVERY_TIMEOUT" not in env and "MESOS_SUBSCRIPTION_BACKOFF_MAX" not in env


def executor_events(stdout: Path) -> list[dict]:
    events = []
    for line in stdout.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.mark.timeout(60)
def test_items41_to_45_unmodified_pymesos_executor(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(executor_shutdown_grace_period=1.0)) as a:
        ex = executor_info("pyexec", command=f"{sys.executable} {TEST_EXECUTOR}")
        fw = framework_info()
        a.call(a.agent.launch, fw, task=task_on(ex, "finish-1", data="finish"))
        a.call(a.agent.launch, fw, task=task_on(ex, "hold-1", data="hold"))
        finished = a.master.wait_state("finish-1", "TASK_FINISHED", timeout=20)
        assert a.master.states("finish-1") == ["TASK_RUNNING", "TASK_FINISHED"]
        assert finished["executor_id"] == {"value": "pyexec"} and finished["agent_id"] == {"value": "S0"}
        a.master.wait_state("hold-1", "TASK_RUNNING")
        executor = a.call(lambda: a.agent.executors[(FRAMEWORK_ID, "pyexec")])
        stdout = executor.sandbox.stdout
        events = executor_events(stdout)
        registered = next(e for e in events if e["event"] == "registered")
        assert registered["executor_id"] == "pyexec" and registered["framework_id"] == FRAMEWORK_ID
        assert registered["env"]["MESOS_AGENT_ENDPOINT"] == a.address
        pid = registered["pid"]
        leader = executor.process.pid  # /bin/sh -c runs the executor: the group's leader
        assert os.getpgid(pid) == leader != os.getpgid(0)  # checklist 41: its own process group
        assert os.getsid(pid) == leader != os.getsid(0)

        # messages both ways, bytes passed through
        a.call(a.agent.framework_message, FRAMEWORK_ID, "pyexec", base64.b64encode(b"ping").decode())
        a.master.wait_for(lambda: a.master.of("executor_message"), timeout=10)
        [(_, fw_id, ex_id, data)] = a.master.of("executor_message")
        assert (fw_id, ex_id, base64.b64decode(data)) == (FRAMEWORK_ID, "pyexec", b"echo:ping")

        # kill -> the executor's TASK_KILLED
        a.call(a.agent.kill_task, FRAMEWORK_ID, "hold-1", None)
        a.master.wait_state("hold-1", "TASK_KILLED", timeout=10)
        a.call(a.agent.launch, fw, task=task_on(ex, "hold-2", data="hold"))
        a.master.wait_state("hold-2", "TASK_RUNNING", timeout=10)

        # shutdown: pymesos kills its own process group with killpg(0, SIGKILL); the agent survives
        a.call(a.agent.shutdown_executor, FRAMEWORK_ID, "pyexec")
        a.master.wait_for(lambda: a.master.of("executor_exited"), timeout=15)
        [(_, _, ex_id, wait_status)] = a.master.of("executor_exited")
        # pymesos' driver returns from run() (exit 0) before its delayed killpg fires; either way is fine
        assert ex_id == "pyexec" and (wait_status == 0 or os.WTERMSIG(wait_status) == signal.SIGKILL)
        assert any(e["event"] == "shutdown" for e in executor_events(stdout))
        lost = a.master.wait_state("hold-2", "TASK_LOST")
        assert lost["reason"] == "REASON_EXECUTOR_TERMINATED" and lost["source"] == "SOURCE_AGENT"
        with pytest.raises(ProcessLookupError):
            os.killpg(leader, 0)  # the executor's group is gone
        # the agent is alive and serving
        assert a.http("GET", "/version")[0] == 200
        a.call(a.agent.launch, fw, task=command_task("after", "true"))
        a.master.wait_state("after", "TASK_FINISHED")
