"""The local agent's built-in command executor emulation (checklist 25, 31, 37, 39, 46), driven through
the AgentLink methods with a recording master; real processes, real sandboxes."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from mesos_gpu.local.agent.agent import AgentConfig
from tests.local.agent_helpers import (
    FRAMEWORK_ID,
    AgentThread,
    RecordingMaster,
    command_task,
    decoded_uuid,
    framework_info,
)


def config(**kw) -> AgentConfig:
    base = dict(cpus=2, mem=1024, disk=1024, docker="off", command_kill_grace_period=3.0)
    base.update(kw)
    return AgentConfig(**base)


def sandbox_of(status: dict, tmp_path: Path, agent_id: str = "S0") -> Path:
    task_id = status["task_id"]["value"]
    container = status["container_status"]["container_id"]["value"]
    return (
        tmp_path
        / "agents"
        / agent_id
        / "frameworks"
        / FRAMEWORK_ID
        / "executors"
        / task_id
        / "runs"
        / container
    )


def test_item46_command_task_starting_running_finished(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("t1", "echo hello; echo oops >&2"))
        final = a.master.wait_state("t1", "TASK_FINISHED")
        assert a.master.states("t1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
        assert final["message"] == "Command exited with status 0"
        updates = a.master.updates("t1")
        for u in updates:
            assert u["source"] == "SOURCE_EXECUTOR"
            assert u["agent_id"] == {"value": "S0"}
            assert u["executor_id"] == {"value": "t1"}
            assert len(decoded_uuid(u)) == 16
            assert isinstance(u["timestamp"], float)
        assert len({u["uuid"] for u in updates}) == 3  # checklist 25: a new uuid for each update
        sandbox = sandbox_of(final, tmp_path)
        assert (sandbox / "stdout").read_text() == "hello\n"
        assert (sandbox / "stderr").read_text() == "oops\n"
        assert (sandbox.parent / "latest").resolve() == sandbox.resolve()
        # after the terminal ACK, the agent no longer reports the task
        a.master.wait_for(lambda: a.call(a.agent.running) == [], what="task forgotten after terminal ACK")


def test_item46_failed_exit_status_and_signal_messages(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("exit3", "exit 3"))
        a.call(a.agent.launch, framework_info(), task=command_task("sig", "kill -KILL $$"))
        failed = a.master.wait_state("exit3", "TASK_FAILED")
        assert failed["message"] == "Command exited with status 3"
        signalled = a.master.wait_state("sig", "TASK_FAILED")
        assert signalled["message"] == "Command terminated with signal Killed"


def test_item46_shell_false_uses_arguments_and_environment(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        task = command_task(
            "argv",
            "/usr/bin/env",
            shell=False,
            arguments=["env"],
            environment={
                "variables": [{"name": "TF_CONFIG", "value": '{"a": 1}'}, {"name": "X", "value": "y z"}]
            },
        )
        a.call(a.agent.launch, framework_info(), task=task)
        final = a.master.wait_state("argv", "TASK_FINISHED")
        env = dict(
            line.split("=", 1)
            for line in (sandbox_of(final, tmp_path) / "stdout").read_text().splitlines()
            if "=" in line
        )
        assert env["TF_CONFIG"] == '{"a": 1}'
        assert env["X"] == "y z"
        sandbox = str(sandbox_of(final, tmp_path))
        assert env["MESOS_SANDBOX"] == sandbox == env["MESOS_DIRECTORY"]
        assert env["MESOS_FRAMEWORK_ID"] == FRAMEWORK_ID
        assert env["MESOS_EXECUTOR_ID"] == "argv"
        assert env["MESOS_AGENT_ENDPOINT"] == a.address
        assert env["CUDA_VISIBLE_DEVICES"] == ""  # no GPU requested: no GPU visible


def test_item46_shell_false_without_arguments_runs_value(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("plain", "pwd", shell=False))
        final = a.master.wait_state("plain", "TASK_FINISHED")
        assert (sandbox_of(final, tmp_path) / "stdout").read_text().strip() == str(
            sandbox_of(final, tmp_path)
        )


def test_item31_kill_with_task_killing_state_and_sigkill_after_grace(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        fw = framework_info(capabilities=("TASK_KILLING_STATE",))
        # ignores SIGTERM: only the SIGKILL after the 0.3 s grace period ends it
        script = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
        a.call(a.agent.launch, fw, task=command_task("stubborn", script))
        stdout = sandbox_of(a.master.wait_state("stubborn", "TASK_RUNNING"), tmp_path) / "stdout"
        a.master.wait_for(lambda: stdout.read_text() == "ready\n", what="the trap is set")
        a.call(a.agent.kill_task, FRAMEWORK_ID, "stubborn", {"grace_period": {"nanoseconds": 300_000_000}})
        killed = a.master.wait_state("stubborn", "TASK_KILLED")
        assert a.master.states("stubborn") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
        assert killed["message"] == "Command terminated with signal Killed"
        killing, final = a.master.updates("stubborn")[2:]
        assert final["timestamp"] - killing["timestamp"] >= 0.25


def test_item31_kill_without_capability_sigterm_is_enough(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("polite", "sleep 30"))
        a.master.wait_state("polite", "TASK_RUNNING")
        a.call(a.agent.kill_task, FRAMEWORK_ID, "polite", None)
        killed = a.master.wait_state("polite", "TASK_KILLED", timeout=2.5)  # well before the 3 s grace
        assert "TASK_KILLING" not in a.master.states("polite")
        assert killed["message"] == "Command terminated with signal Terminated"


def test_item37_gpu_indices_distinct_exposed_and_released(tmp_path: Path) -> None:
    show = 'echo "$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES"'
    with AgentThread(tmp_path, config(gpus=3)) as a:
        info = a.call(a.agent.agent_info)
        assert {"name": "gpus", "type": "SCALAR", "scalar": {"value": 3.0}, "role": "*"} in info["resources"]
        assert {"name": "gpu_model", "type": "TEXT", "text": {"value": "Simulated-GPU"}} in info["attributes"]
        fw = framework_info(capabilities=("GPU_RESOURCES",))
        a.call(a.agent.launch, fw, task=command_task("two", f"{show}; sleep 30", gpus=2))
        a.call(a.agent.launch, fw, task=command_task("one", f"{show}; sleep 30", gpus=1))
        a.master.wait_state("two", "TASK_RUNNING")
        a.master.wait_state("one", "TASK_RUNNING")
        a.call(a.agent.launch, fw, task=command_task("none-left", show, gpus=1))
        failed = a.master.wait_state("none-left", "TASK_FAILED")
        assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert failed["message"] == "Failed to launch container: Requested 1 gpus but only 0 available"
        held = a.call(a.agent.gpus.holders)
        indices = sorted(i for v in held.values() for i in v)
        assert indices == [0, 1, 2]
        a.call(a.agent.gpus.check_invariants)
        a.call(a.agent.kill_task, FRAMEWORK_ID, "two", None)
        a.master.wait_state("two", "TASK_KILLED")
        a.master.wait_for(lambda: a.call(lambda: a.agent.gpus.available) == 2, what="GPUs released")
        a.call(a.agent.launch, fw, task=command_task("again", show, gpus=2))
        final = a.master.wait_state("again", "TASK_FINISHED")
        visible = (sandbox_of(final, tmp_path) / "stdout").read_text().strip()
        one = (sandbox_of(a.master.updates("one")[0], tmp_path) / "stdout").read_text().strip()
        again = visible.split("|")[0].split(",")
        assert len(again) == 2 and one.split("|")[0] not in again  # never shared while held
        assert visible.split("|")[0] == visible.split("|")[1]


def test_item25_next_update_only_after_ack_and_retry_same_uuid(tmp_path: Path) -> None:
    master = RecordingMaster(auto_ack=False)
    with AgentThread(tmp_path, config(status_update_retry=0.2), master=master) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("slow-ack", "true"))
        master.wait_for(lambda: len(master.updates("slow-ack")) >= 3, what="two retries")
        first = master.updates("slow-ack")
        assert {u["state"] for u in first} == {"TASK_STARTING"}
        assert len({u["uuid"] for u in first}) == 1  # re-sent with the same uuid
        # the task finished long ago on the agent, but the stream waits for the ACK
        assert a.call(a.agent.latest_state, FRAMEWORK_ID, "slow-ack") == "TASK_FINISHED"
        a.call(
            a.agent.acknowledge, FRAMEWORK_ID, "slow-ack", "AAAAAAAAAAAAAAAAAAAAAA=="
        )  # wrong uuid: ignored
        a.call(a.agent.acknowledge, FRAMEWORK_ID, "slow-ack", first[0]["uuid"])
        running = master.wait_state("slow-ack", "TASK_RUNNING")
        assert "TASK_FINISHED" not in master.states("slow-ack")
        a.call(a.agent.acknowledge, FRAMEWORK_ID, "slow-ack", running["uuid"])
        master.wait_state("slow-ack", "TASK_FINISHED")


def test_item39_image_without_docker_runs_on_host_with_warning(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=1)) as a:
        task = command_task("img", "echo ran", gpus=1)
        task["container"] = {"type": "DOCKER", "docker": {"image": "busybox:latest"}}
        a.call(a.agent.launch, framework_info(capabilities=("GPU_RESOURCES",)), task=task)
        final = a.master.wait_state("img", "TASK_FINISHED")
        running = a.master.wait_state("img", "TASK_RUNNING")
        assert "Docker image 'busybox:latest' was NOT used" in running["message"]
        assert "DOCKER container" in running["message"]  # the GPU + DOCKER limitation warning
        stderr = (sandbox_of(final, tmp_path) / "stderr").read_text()
        assert "WARNING: Docker image 'busybox:latest' was NOT used" in stderr
        assert (sandbox_of(final, tmp_path) / "stdout").read_text() == "ran\n"
        mesos_form = command_task("img2", "true")
        mesos_form["container"] = {
            "type": "MESOS",
            "mesos": {"image": {"type": "DOCKER", "docker": {"name": "x:1"}}},
        }
        a.call(a.agent.launch, framework_info(), task=mesos_form)
        assert "Docker image 'x:1' was NOT used" in a.master.wait_state("img2", "TASK_RUNNING")["message"]
        assert "DOCKER container" not in a.master.wait_state("img2", "TASK_RUNNING")["message"]


def test_files_read_serves_sandbox_files(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("log", "printf 'abcdef'"))
        final = a.master.wait_state("log", "TASK_FINISHED")
        sandbox = sandbox_of(final, tmp_path)
        virtual = f"/frameworks/{FRAMEWORK_ID}/executors/log/runs/latest"
        for path in (f"{sandbox}/stdout", f"{virtual}/stdout", f"{sandbox.parent}/latest/stdout"):
            status, headers, body = a.http("GET", f"/files/read?path={path}&offset=2&length=3")
            assert status == 200 and headers["content-type"] == "application/json"
            assert json.loads(body) == {"data": "cde", "offset": 2}
        status, _, body = a.http("GET", f"/files/read?path={virtual}/stdout&offset=-1")
        assert json.loads(body) == {"data": "", "offset": 6}
        assert a.http("GET", f"/files/read?path={virtual}/nope&offset=0")[0] == 404
        assert a.http("GET", f"/files/read?path={tmp_path}/elsewhere&offset=0")[0] == 404
        assert a.http("GET", f"/files/read?path={virtual}/../../../../../../../etc/passwd&offset=0")[0] == 404
        status, _, body = a.http("GET", f"/files/read?path={virtual}&offset=0")
        assert (status, body) == (400, b"Cannot read a directory.\n")
        assert a.http("GET", "/files/read?offset=0")[:3:2] == (400, b"Expecting 'path=value' in query.\n")
        status, _, body = a.http("GET", f"/files/read?path={virtual}/stdout&offset=x")
        assert status == 400 and body.startswith(b"Failed to parse offset")


def test_version_and_state(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config(gpus=2, attributes={"rack": 3, "zone": "a"})) as a:
        status, _, body = a.http("GET", "/version")
        assert status == 200 and re.fullmatch(r"\d+\.\d+\.\d+", json.loads(body)["version"])
        a.call(a.agent.launch, framework_info(), task=command_task("st", "sleep 30", gpus=1))
        a.master.wait_state("st", "TASK_RUNNING")
        state = json.loads(a.http("GET", "/state")[2])
        assert state["id"] == "S0" and state["pid"] == f"slave(1)@{a.address}"
        [fw] = state["frameworks"]
        [executor] = fw["executors"]
        assert executor["tasks"][0]["state"] == "TASK_RUNNING" and executor["gpus"] == [0]
        assert {"name": "rack", "type": "SCALAR", "scalar": {"value": 3.0}} in state["attributes"]
        assert {"name": "zone", "type": "TEXT", "text": {"value": "a"}} in state["attributes"]


def test_stop_kills_every_process_group(tmp_path: Path) -> None:
    with AgentThread(tmp_path, config()) as a:
        a.call(a.agent.launch, framework_info(), task=command_task("bg", "sleep 60 & sleep 60"))
        a.master.wait_state("bg", "TASK_RUNNING")
        pid = a.call(lambda: a.agent.tasks[(FRAMEWORK_ID, "bg")].command.process.pid)
        assert os.getpgid(pid) == pid  # a new session/process group of its own
        assert os.getsid(pid) == pid
    # Every process of the group is dead within 2 s. A killed child nobody has reaped yet is a zombie
    # that signal 0 still reaches, so liveness is read from /proc (state Z is dead).
    deadline = time.monotonic() + 2
    while live_members(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live_members(pid) == []


def live_members(pgid: int) -> list[int]:
    """The pids of the process group that are not zombies."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry))
    return members


def test_item37_nvml_discovered_gpus_through_the_isolator_fake_backend(tmp_path: Path) -> None:
    from isolator.fakenvml import parse_fake_spec
    from mesos_gpu.local.agent.gpus import nvml_devices

    devices = nvml_devices(parse_fake_spec("2xA100-SXM4-40GB"))
    assert [(d.index, d.simulated) for d in devices] == [(0, False), (1, False)]
    assert nvml_devices() == [] or all(not d.simulated for d in nvml_devices())  # no driver here: []
    with AgentThread(tmp_path, config(), gpu_devices=devices) as a:
        info = a.call(a.agent.agent_info)
        assert {"name": "gpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"} in info["resources"]
        assert {"name": "gpu_model", "type": "TEXT", "text": {"value": "NVIDIA-A100-SXM4-40GB"}} in info[
            "attributes"
        ]
        assert {"name": "gpu_memory_mb", "type": "SCALAR", "scalar": {"value": 40960.0}} in info["attributes"]
        show = 'echo "$CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER"'
        a.call(
            a.agent.launch,
            framework_info(capabilities=("GPU_RESOURCES",)),
            task=command_task("g", show, gpus=1),
        )
        final = a.master.wait_state("g", "TASK_FINISHED")
        assert (sandbox_of(final, tmp_path) / "stdout").read_text() == "0 PCI_BUS_ID\n"
