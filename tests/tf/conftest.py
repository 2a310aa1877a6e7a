"""Helpers for the TF tests: kazoo clients that are always closed, launcher processes always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kazoo_client(zk_hosts: str) -> Iterator[Callable[[], KazooClient]]:
    """A factory of started kazoo clients on the test ZooKeeper; every one is closed afterwards."""
    clients: list[KazooClient] = []

    def make() -> KazooClient:
        client = KazooClient(hosts=zk_hosts, timeout=10.0)
        client.start(timeout=15)
        clients.append(client)
        return client

    yield make
    for client in clients:
        with contextlib.suppress(Exception):
            client.stop()
            client.close()


@pytest.fixture
def launcher_processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start the launcher (`python -m mesos_gpu.tf.launcher ARGS`) in its own session; all are killed
    (whole process group) at the end of the test."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, python: list[str] | None = None, env: dict[str, str] | None = None):
        command = (python or [sys.executable, "-m", "mesos_gpu.tf.launcher"]) + list(args)
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        # The whole group, not just the launcher: a child may outlive a killed launcher.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
