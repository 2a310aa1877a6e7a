"""Fixtures of the CLI tests: one live `Standalone` (local Mesos cluster + scheduler + API on the test
ZooKeeper) per module, and `run_cli`, which runs the real `mesos-gpu` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mesos_gpu.standalone import Standalone

# Our subcommand modules; the bootstrap registers any that `mesos_gpu.cli.SUBCOMMANDS` lacks.
COMMANDS = (
    "mesos_gpu.commands.submit",
    "mesos_gpu.commands.jobs",
    "mesos_gpu.commands.logs",
    "mesos_gpu.commands.run",
    "mesos_gpu.commands.cluster",
    "mesos_gpu.commands.local",
)
BOOTSTRAP = (
    "import sys, mesos_gpu.cli as cli; "
    f"cli.SUBCOMMANDS = tuple(cli.SUBCOMMANDS) + tuple(m for m in {COMMANDS!r} if m not in cli.SUBCOMMANDS); "
    "sys.exit(cli.main(sys.argv[1:]))"
)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", BOOTSTRAP, *args]


def run_cli(*args: str, api: str | None = None, timeout: float = 120, stdin: str | None = None) -> Result:
    """Run `mesos-gpu ARGS` (with MESOS_GPU_API=api) and return its exit status and output."""
    env = dict(os.environ)
    if api is not None:
        env["MESOS_GPU_API"] = api
    done = subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, env=env, input=stdin, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def local(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A live local stack: 2 agents x 2 simulated GPUs, the scheduler and its API."""
    stack = Standalone(
        zk_hosts=zk_hosts,
        framework_name=f"cli-{uuid.uuid4().hex[:8]}",
        workdir=tmp_path_factory.mktemp("local"),
        tick_seconds=0.2,
        cluster_options={"allocation_interval": 0.2},
    )
    with stack:
        yield stack
