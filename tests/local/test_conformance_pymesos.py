"""Fidelity checklist items proved with the UNMODIFIED pymesos 0.3.15 drivers against LocalCluster
(mesos-protocol.md section 3; each test names the item it proves)."""

from __future__ import annotations

import base64
import glob
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pymesos

from tests.local.conftest import RecordingScheduler, command_task, framework_info, scalar

EXECUTOR_SCRIPT = textwrap.dedent(
    """
    import os, sys, time, threading
    import pymesos

    class Echo(pymesos.Executor):
        def launchTask(self, driver, task):
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})

        def killTask(self, driver, task_id):
            driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

        def frameworkMessage(self, driver, message):
            data = pymesos.decode_data(message)
            driver.sendFrameworkMessage(pymesos.encode_data(b"echo:" + data))

    with open(os.path.join(os.environ["MESOS_SANDBOX"], "pgid"), "w") as f:
        f.write(str(os.getpgid(0)))
    pymesos.MesosExecutorDriver(Echo(), use_addict=True).run()
    """
)


def fid(recorder: RecordingScheduler) -> str:
    return recorder.wait_for("registered")["framework_id"]["value"]


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_item_50_register_gpu_offer_launch_running_ack_finished(cluster, driver_factory):
    driver, recorder = driver_factory(cluster.master_address)
    registered = recorder.wait_for("registered")
    assert registered["master_info"]["version"] == "1.11.0"  # item 1: /version read by pymesos
    framework = cluster.call(lambda: cluster.master.frameworks[fid(recorder)])
    assert framework.has("GPU_RESOURCES")  # pymesos kept the capability because the version is numeric
    offer = recorder.wait_for("offer", lambda o: scalar(o, "gpus") == 2)
    driver.launchTasks(offer["id"], [command_task(offer, "hello", cmd="echo hello", gpus=1)])
    recorder.wait_state("hello", "TASK_FINISHED")
    assert recorder.updates_for("hello") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    # the implicit ACK of the terminal update was routed to the agent and the master forgot the task
    wait_until(lambda: cluster.call(lambda: "hello" not in cluster.master.frameworks[fid(recorder)].tasks))


def test_item_50_stop_tears_down_and_failover_stop_keeps_tasks(cluster, driver_factory):
    info = framework_info(failover_timeout=60.0)
    driver, recorder = driver_factory(cluster.master_address, info)
    framework_id = fid(recorder)
    offer = recorder.wait_for("offer")
    driver.launchTasks(offer["id"], [command_task(offer, "survivor", cmd="sleep 30")])
    recorder.wait_state("survivor", "TASK_RUNNING")
    time.sleep(0.2)  # let the implicit ACK reach the master before the stream goes away
    driver.stop(failover=True)
    driver.join()
    wait_until(lambda: not cluster.call(lambda: cluster.master.frameworks[framework_id].connected))
    state = cluster.state()
    framework = next(f for f in state["frameworks"] if f["id"] == framework_id)
    assert not framework["connected"] and framework["tasks"][0]["state"] == "TASK_RUNNING"

    info2 = framework_info(failover_timeout=60.0, id={"value": framework_id})
    driver2, recorder2 = driver_factory(cluster.master_address, info2)
    recorder2.wait_for("reregistered")  # pymesos re-subscribes with the id it was given
    driver2.reconcileTasks([])
    assert (
        recorder2.wait_for("update", lambda u: u["task_id"]["value"] == "survivor")["state"] == "TASK_RUNNING"
    )
    driver2.stop()  # no failover: TEARDOWN
    driver2.join()
    wait_until(lambda: framework_id in {f["id"] for f in cluster.state()["completed_frameworks"]})


def test_item_23_stream_drop_resubscribes_within_a_second(cluster, driver_factory):
    _, recorder = driver_factory(cluster.master_address)
    framework_id = fid(recorder)
    recorder.wait_for("offer")
    time.sleep(0.1)
    dropped = time.monotonic()
    assert cluster.drop_stream(framework_id)
    recorder.wait_for("reregistered", timeout=5)
    assert time.monotonic() - dropped < 1.0
    assert cluster.call(lambda: cluster.master.frameworks[framework_id].connected)


def test_item_22_stopped_heartbeats_do_not_reconnect(cluster, driver_factory):
    _, recorder = driver_factory(cluster.master_address)
    framework_id = fid(recorder)
    recorder.wait_for("heartbeat")
    assert cluster.stop_heartbeats(framework_id)
    time.sleep(0.6)
    beats = recorder.count("heartbeat")
    time.sleep(1.5)  # three intervals
    assert recorder.count("heartbeat") == beats
    assert recorder.count("disconnected") == 0 and recorder.count("reregistered") == 0


def test_item_24_standby_redirects_pymesos_to_the_leader(cluster_factory, driver_factory):
    leader = cluster_factory(agents=1)
    standby = cluster_factory(agents=0)
    standby.call(standby.master.set_standby, leader.master_address)
    _, recorder = driver_factory(standby.master_address)
    registered = recorder.wait_for("registered")
    assert registered["master_info"]["port"] == int(leader.master_address.split(":")[1])
    assert fid(recorder) in leader.call(lambda: set(leader.master.frameworks))
    recorder.wait_for("offer")


def test_item_48_standby_without_leader_is_not_hammered(cluster_factory, driver_factory):
    lonely = cluster_factory(agents=0)
    lonely.call(lonely.master.set_standby, None)
    _, recorder = driver_factory(lonely.master_address)
    time.sleep(2.0)
    assert recorder.count("registered") == 0
    # each 503 takes STANDBY_503_DELAY (0.5 s): a handful of SUBSCRIBEs in 2 s, not thousands
    assert 1 <= lonely.call(lambda: lonely.master.scheduler_requests) <= 6
    lonely.call(lonely.master.set_leader)
    recorder.wait_for("registered", timeout=5)


def test_item_24_zookeeper_detection_and_leader_change(zk_url, cluster_factory, driver_factory):
    first = cluster_factory(agents=1, zk_url=zk_url)
    second = cluster_factory(agents=1, zk_url=zk_url)
    wait_until(lambda: not second.call(lambda: second.master.is_leader))
    assert second.call(lambda: second.master.leader_address) == first.master_address
    driver, recorder = driver_factory(zk_url)
    detector_zk = driver.detector.zk  # pymesos stops but never closes it: we close it below
    registered = recorder.wait_for("registered")
    assert registered["master_info"]["port"] == int(first.master_address.split(":")[1])
    framework_id = fid(recorder)
    mark = recorder.mark()
    first.stop()  # the leader's node disappears; the second master takes over; pymesos follows
    wait_until(lambda: second.call(lambda: second.master.is_leader))
    recorder.wait_for("reregistered", timeout=15, after=mark)
    assert framework_id in second.call(lambda: set(second.master.frameworks))
    driver.stop(failover=True)
    driver.join()
    detector_zk.close()


def test_item_10_launch_from_callback_while_megabytes_are_queued(cluster, driver_factory):
    recorder = RecordingScheduler()
    launched: list[str] = []

    def on_offers(driver: Any, offers: list[Any]) -> None:
        if not launched:
            framework = cluster.master.frameworks[driver.framework_id]
            big = {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": "a"},
                    "executor_id": {"value": "e"},
                    "data": base64.b64encode(b"y" * 65536).decode(),
                },
            }
            for _ in range(24):  # ~2 MB queued to this client before it returns from the callback
                cluster.call(cluster.master.send, framework, big)
            launched.append("x")
            driver.launchTasks(offers[0]["id"], [command_task(offers[0], "amid-the-flood", cmd="true")])

    recorder.on_offers = on_offers
    driver_factory(cluster.master_address, scheduler=recorder)
    recorder.wait_state("amid-the-flood", "TASK_FINISHED", timeout=20)
    assert recorder.count("message") == 24
    assert recorder.count("callback_error") == 0


def test_item_31_kill_running_task_with_killing_state(cluster, driver_factory):
    info = framework_info(capabilities=[{"type": "GPU_RESOURCES"}, {"type": "TASK_KILLING_STATE"}])
    driver, recorder = driver_factory(cluster.master_address, info)
    offer = recorder.wait_for("offer")
    driver.launchTasks(offer["id"], [command_task(offer, "victim", cmd="sleep 30")])
    recorder.wait_state("victim", "TASK_RUNNING")
    driver.killTask({"value": "victim"})
    recorder.wait_state("victim", "TASK_KILLED")
    assert recorder.updates_for("victim")[-2:] == ["TASK_KILLING", "TASK_KILLED"]


def test_items_14_34_35_41_custom_executor_message_shutdown_and_failure(cluster, driver_factory, tmp_path):
    script = tmp_path / "echo_executor.py"
    script.write_text(EXECUTOR_SCRIPT)
    driver, recorder = driver_factory(cluster.master_address)
    offer = recorder.wait_for("offer")
    executor = {
        "executor_id": {"value": "echo"},
        "command": {"value": f"{sys.executable} {script}"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
        "shutdown_grace_period": {"nanoseconds": 500_000_000},
    }
    task = command_task(offer, "on-executor", executor=executor)
    del task["command"]
    driver.launchTasks(offer["id"], [task])
    running = recorder.wait_state("on-executor", "TASK_RUNNING", timeout=20)
    assert running["executor_id"] == {"value": "echo"} and running["source"] == "SOURCE_EXECUTOR"
    agent_id = offer["agent_id"]
    driver.sendFrameworkMessage({"value": "echo"}, agent_id, pymesos.encode_data(b"ping"))
    message = recorder.wait_for("message")
    assert pymesos.decode_data(message["data"]) == b"echo:ping"  # item 34: bytes passed through
    assert message["executor_id"] == {"value": "echo"} and message["agent_id"] == agent_id
    pgid_files = glob.glob(str(cluster.workdir / "**" / "pgid"), recursive=True)
    assert pgid_files
    pgid = int(Path(pgid_files[0]).read_text())
    assert pgid != os.getpgid(0)  # item 41: its own process group
    driver._send(
        {
            "type": "SHUTDOWN",
            "framework_id": {"value": driver.framework_id},
            "shutdown": {"executor_id": {"value": "echo"}, "agent_id": agent_id},
        }
    )
    lost = recorder.wait_for("executor_lost", timeout=15)  # item 14: FAILURE with agent_id and status
    assert lost["executor_id"] == {"value": "echo"} and lost["agent_id"] == agent_id
    assert isinstance(lost["status"], int)
    wait_until(lambda: _group_gone(pgid))
    assert cluster.call(lambda: cluster.master.agents[agent_id["value"]].executors) == {}  # resources freed
    assert cluster.state()["slaves"]  # the agent survived the executor's process-group kill


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_item_37_distinct_gpus_per_task(cluster_factory, driver_factory):
    single = cluster_factory(agents=1, gpus_per_agent=2)
    driver, recorder = driver_factory(single.master_address)
    offer = recorder.wait_for("offer")
    tasks = [
        command_task(offer, f"gpu-{i}", cmd="echo CUDA=$CUDA_VISIBLE_DEVICES; sleep 1", gpus=1)
        for i in range(2)
    ]
    driver.launchTasks(offer["id"], tasks)
    for i in range(2):
        recorder.wait_state(f"gpu-{i}", "TASK_FINISHED")
    seen = []
    stdouts = glob.glob(str(single.workdir / "**" / "stdout"), recursive=True)
    for path in {os.path.realpath(f) for f in stdouts}:
        text = Path(path).read_text()
        if "CUDA=" in text:
            seen.append(text.split("CUDA=")[1].split()[0])
    assert sorted(seen) == ["0", "1"]


def test_master_restart_agents_reregister_and_tasks_reconcile(cluster, driver_factory):
    driver, recorder = driver_factory(cluster.master_address, framework_info(failover_timeout=60.0))
    framework_id = fid(recorder)
    offer = recorder.wait_for("offer")
    driver.launchTasks(offer["id"], [command_task(offer, "through-restart", cmd="sleep 30")])
    recorder.wait_state("through-restart", "TASK_RUNNING")
    time.sleep(0.2)
    mark = recorder.mark()
    old_id = cluster.master.master_id
    cluster.restart_master()
    assert cluster.master.master_id != old_id
    recorder.wait_for("reregistered", after=mark, timeout=10)
    assert cluster.call(lambda: cluster.master.frameworks[framework_id].connected)
    driver.reconcileTasks([])
    status = recorder.wait_for(
        "update",
        lambda u: u["task_id"]["value"] == "through-restart" and u.get("reason") == "REASON_RECONCILIATION",
        timeout=5,
    )
    assert status["state"] == "TASK_RUNNING"


def test_kill_agent_loses_its_tasks(cluster, driver_factory):
    driver, recorder = driver_factory(cluster.master_address)
    offer = recorder.wait_for("offer", lambda o: o["agent_id"]["value"] == cluster.agents[0].agent_id)
    driver.launchTasks(offer["id"], [command_task(offer, "on-doomed-agent", cmd="sleep 30")])
    recorder.wait_state("on-doomed-agent", "TASK_RUNNING")
    cluster.kill_agent(0)
    lost = recorder.wait_state("on-doomed-agent", "TASK_LOST")
    assert lost["reason"] == "REASON_AGENT_REMOVED" and "uuid" not in lost
    assert recorder.wait_for("agent_lost") == {"value": cluster.agents[0].agent_id}
