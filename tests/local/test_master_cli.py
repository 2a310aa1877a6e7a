"""`mesos-gpu local up`: prints the master address, serves pymesos-compatible endpoints, and stops
everything it started on SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

from mesos_gpu.local.cli import register
from tests.local.conftest import get_json


def test_register_adds_local_up():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["local", "up", "--agents", "3", "--gpus-per-agent", "1", "--port", "0"])
    assert (args.agents, args.gpus_per_agent, args.host, args.port) == (3, "1", "127.0.0.1", 0)
    assert args.func.__name__ == "run_up"


def test_local_up_runs_in_foreground_and_stops_on_sigterm(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mesos_gpu.local.cli",
            "local",
            "up",
            "--port",
            "0",
            "--agents",
            "2",
            "--gpus-per-agent",
            "2",
            "--workdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("Mesos master (local) at 127.0.0.1:"), first
        address = first.rsplit(" ", 1)[1].strip()
        status, state, _ = get_json(address, "/state")
        assert status == 200 and len(state["slaves"]) == 2
        assert all(s["resources"]["gpus"] == 2 for s in state["slaves"])
        for path in ("/master/slaves", "/slaves"):    # Mesos' agents endpoint: /state's agents + *_full
            status, slaves, _ = get_json(address, path)
            assert status == 200 and slaves["recovered_slaves"] == []
            listed = [{k: v for k, v in s.items() if not k.endswith("_full")} for s in slaves["slaves"]]
            assert listed == state["slaves"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


def test_run_up_stops_when_asked_from_another_thread(tmp_path):
    from mesos_gpu.local.cli import run_up

    stop = threading.Event()
    args = argparse.Namespace(
        agents=1,
        gpus_per_agent="0",
        host="127.0.0.1",
        port=0,
        zk=None,
        start_zookeeper=False,
        workdir=str(tmp_path),
        offer_timeout=None,
        no_gpu_filter=False,
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_up(args, stop)))
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(20)
    assert result == [0]
