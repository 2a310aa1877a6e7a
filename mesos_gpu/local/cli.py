"""`mesos-gpu local up`: run the embedded master and agents in the foreground until Ctrl-C or SIGTERM.

Registered through `register(subparsers)` (mesos_gpu/cli.py SUBCOMMANDS lists this module).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from mesos_gpu.core.sharing import ATTR_GPU_MEMORY, ATTR_GPU_MIG, ATTR_GPU_MPS
from mesos_gpu.local.agent.gpus import DEFAULT_GPU_MEMORY_MB


def register(subparsers: Any) -> None:
    """Add `local` with its `up` subcommand."""
    local = subparsers.add_parser("local", help="the embedded Mesos-compatible local cluster")
    commands = local.add_subparsers(title="local commands", metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="run a local master and agents in the foreground",
        description="Run the embedded Mesos-compatible master and N agents (with simulated or real GPUs) "
        "in the foreground. Prints the master address; Ctrl-C or SIGTERM stops every process it started.",
    )
    up.add_argument("--agents", type=int, default=2, help="number of agents (default 2)")
    up.add_argument(
        "--gpus-per-agent",
        default="2",
        help="simulated GPU slots per agent, or 'nvml' for the host's real GPUs, split between the agents "
        "(default 2)",
    )
    add_gpu_sharing_arguments(up)
    add_secrets_argument(up)
    up.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    up.add_argument("--port", type=int, default=5050, help="master port (default 5050; 0 picks a free one)")
    up.add_argument(
        "--zk", default=None, help="announce the master in ZooKeeper, e.g. zk://127.0.0.1:2181/mesos"
    )
    up.add_argument(
        "--start-zookeeper",
        action="store_true",
        help="start a ZooKeeper server from the local install and announce the master there",
    )
    up.add_argument("--workdir", default=None, help="where sandboxes go (default: a temporary directory)")
    up.add_argument(
        "--offer-timeout", type=float, default=None, help="rescind offers unanswered this long (s)"
    )
    up.add_argument(
        "--no-gpu-filter", action="store_true", help="offer GPU agents to frameworks without GPU_RESOURCES"
    )
    up.set_defaults(func=run_up)
    local.set_defaults(func=lambda _args: (local.print_help(), 0)[1])


def add_gpu_sharing_arguments(parser: argparse.ArgumentParser) -> None:
    """--gpu-memory, --mig and --mps: what the simulated GPUs offer to GPU shares (agent attributes)."""
    parser.add_argument(
        "--gpu-memory",
        type=int,
        default=DEFAULT_GPU_MEMORY_MB,
        metavar="MB",
        help=f"memory of each simulated GPU in MB (default {DEFAULT_GPU_MEMORY_MB})",
    )
    parser.add_argument(
        "--mig",
        default="",
        metavar="LAYOUT",
        help="simulate MIG: the instances every GPU is partitioned into, e.g. 3g.40gb/2g.20gb/1g.10gb "
        "(give --gpu-memory to match)",
    )
    parser.add_argument(
        "--mps", action="store_true", help="simulate GPUs that can run a CUDA MPS daemon (not with --mig)"
    )


def add_secrets_argument(parser: argparse.ArgumentParser) -> None:
    """--secrets-dir: where the local agents resolve the jobs' secret references (docs/jobs.md)."""
    parser.add_argument(
        "--secrets-dir",
        metavar="DIR",
        help="resolve the jobs' secrets from this directory, one file per secret name "
        "(default: $MESOS_GPU_SECRETS_DIR; none: a task using a secret fails)",
    )


def apply_secrets_dir(args: argparse.Namespace) -> str | None:
    """Give --secrets-dir to the agents this process starts (they read MESOS_GPU_SECRETS_DIR); the
    reason when it is not a directory, else None."""
    directory = getattr(args, "secrets_dir", None)
    if not directory:
        return None
    path = os.path.abspath(directory)
    if not os.path.isdir(path):
        return f"--secrets-dir {directory}: not a directory"
    os.environ["MESOS_GPU_SECRETS_DIR"] = path
    return None


def host_gpus_usable() -> bool:
    """For `--gpus-per-agent nvml`: whether NVML answers; if not, its message on stderr (fail at start
    rather than run with 0 GPUs)."""
    from mesos_gpu.local.agent.gpus import NvmlUnavailableError, host_devices

    try:
        host_devices()
    except NvmlUnavailableError as exc:
        print(f"mesos-gpu: --gpus-per-agent nvml: {exc}", file=sys.stderr)
        return False
    return True


def gpu_sharing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The LocalCluster arguments of --gpu-memory, --mig and --mps; ValueError with the reason when
    they are not valid (a malformed MIG layout, memory too small for it)."""
    from mesos_gpu.local.agent.gpus import GpuSharing

    sharing = GpuSharing(
        int(getattr(args, "gpu_memory", DEFAULT_GPU_MEMORY_MB)),
        str(getattr(args, "mig", "") or ""),
        bool(getattr(args, "mps", False)),
    )
    return {"gpu_memory": sharing.memory_mb, "gpu_mig": sharing.mig, "gpu_mps": sharing.mps}


def _gpus(text: str) -> int | None:
    if text.lower() in ("nvml", "host"):  # "host": an alias `mesos-gpu local` once documented
        return None
    count = int(text)
    if count < 0:
        raise SystemExit("--gpus-per-agent must be >= 0 or 'nvml'")
    return count


def run_up(args: argparse.Namespace, stop_event: threading.Event | None = None) -> int:
    """Start the cluster, print its address, wait for a signal (or `stop_event`), stop everything."""
    from mesos_gpu.local.cluster import LocalCluster

    try:
        sharing = gpu_sharing_options(args)
    except ValueError as exc:
        print(f"mesos-gpu: {exc}", file=sys.stderr)
        return 2
    problem = apply_secrets_dir(args)
    if problem:
        print(f"mesos-gpu: {problem}", file=sys.stderr)
        return 2
    gpus = _gpus(str(args.gpus_per_agent))
    if gpus is None and not host_gpus_usable():
        return 1
    done = stop_event or threading.Event()
    zookeeper: Any = None
    zk_url = args.zk
    previous: dict[int, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        done.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        if args.start_zookeeper and not zk_url:
            from mesos_gpu.local.zookeeper import ZooKeeperServer

            zookeeper = ZooKeeperServer(host=args.host).start()
            zk_url = f"zk://{zookeeper.hosts}/mesos"
        cluster = LocalCluster(
            agents=args.agents,
            gpus_per_agent=gpus,
            workdir=args.workdir,
            host=args.host,
            port=args.port,
            zk_url=zk_url,
            offer_timeout=args.offer_timeout,
            filter_gpu_resources=not args.no_gpu_filter,
            **sharing,
        )
        with cluster:
            print(f"Mesos master (local) at {cluster.master_address}", flush=True)
            if zk_url:
                print(f"Announced in ZooKeeper: {zk_url}", flush=True)
            for agent in cluster.agents:
                host, port = agent.endpoint()
                print(f"  agent {agent.agent_id} at {host}:{port} ({describe_gpus(agent)})", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            while not done.wait(0.5):
                pass
            print("Stopping the local cluster...", flush=True)
    finally:
        if zookeeper is not None:
            zookeeper.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def describe_gpus(agent: Any) -> str:
    """"2 GPUs, 16384 MB each, MIG 3g.40gb/2g.20gb, MPS" for the startup banner."""
    parts = [f"{agent.gpus.total} GPUs"]
    if agent.gpus.total:
        attrs = agent.attribute_values()
        memory = attrs.get(ATTR_GPU_MEMORY)
        if memory:
            parts.append(f"{int(float(memory))} MB each")
        if attrs.get(ATTR_GPU_MIG):
            parts.append(f"MIG {attrs[ATTR_GPU_MIG]}")
        if attrs.get(ATTR_GPU_MPS) == "true":
            parts.append("MPS")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesos-gpu")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
