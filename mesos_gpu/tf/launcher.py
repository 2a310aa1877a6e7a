"""The in-task launcher: register in ZooKeeper, wait for the whole TF cluster, run the user's command.

`python3 launcher.pyz [options] (--shell 'CMD' | -- PROGRAM ARGS...)`; every option falls back to its
MESOS_GPU_* variable (see `mesos_gpu.core.tfconfig`). Needs Python 3.8+ and kazoo (both in the bundle).
Exit status: the command's (128+N when killed by signal N), or one of the EXIT_* codes below.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pkgutil
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from mesos_gpu.core import tfconfig as tfc

EXIT_USAGE = 2  # bad or missing settings
EXIT_RENDEZVOUS_TIMEOUT = 3  # a member did not arrive in time (the message names it)
EXIT_ZOOKEEPER = 4  # ZooKeeper could not be reached
EXIT_NOT_STARTED = 127  # the command could not be started (as a shell reports it)

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Short, so that the node of a member that died without leaving (SIGKILL, OOM, a lost agent) goes
# away before its task is restarted; ZooKeeper's floor is 2 ticks (4 s with the usual tickTime).
SESSION_TIMEOUT_S = 6.0
PREFIX = "mesos-gpu-launcher"
# A capped GPU share's memory (MB): TensorFlow in the command is told it (mesos_gpu/tf/tfmemory.py, whose
# source the launcher copies into a PYTHONPATH directory, never importing it; the names are its own).
ENV_GPU_MEMORY_LIMIT = "MESOS_GPU_MEMORY_LIMIT_MB"
MEMORY_HOOK_MODULE = "mesos_gpu_tfmemory"


class UsageError(Exception):
    """The launcher was started without what it needs; the message says what."""


@dataclass(frozen=True)
class Settings:
    """Everything the launcher needs, from its arguments and the environment the scheduler set."""

    member: tfc.Member
    counts: dict[str, int]
    command: list[str]
    zk_url: str = ""
    job_id: str = ""
    host: str = ""
    port: int = 0
    timeout: float = tfc.DEFAULT_RENDEZVOUS_TIMEOUT

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def distributed(self) -> bool:
        return tfc.is_distributed(self.counts)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="launcher.pyz",
        description="Join a TF job's cluster through ZooKeeper, export TF_CONFIG, run the command.",
    )
    p.add_argument("--zk", help=f"zk://host:port[,host:port]/chroot (default ${tfc.ENV_ZK})")
    p.add_argument("--job-id", help=f"default ${tfc.ENV_JOB_ID}")
    p.add_argument("--role", help=f"chief, worker, ps or evaluator (default ${tfc.ENV_ROLE})")
    p.add_argument("--index", help=f"default ${tfc.ENV_INDEX}")
    p.add_argument("--members", help=f"role counts, e.g. chief:1,worker:2 (default ${tfc.ENV_MEMBERS})")
    p.add_argument("--host", help=f"this task's host name (default ${tfc.ENV_HOST}, else the hostname)")
    p.add_argument("--port", help=f"this task's port from the offer (default ${tfc.ENV_PORT}, else $PORT0)")
    p.add_argument("--timeout", help=f"rendezvous timeout in seconds (default ${tfc.ENV_TIMEOUT} or 300)")
    p.add_argument("--shell", help="run this command with /bin/sh -c")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS... (instead of --shell)")
    return p


def _command(argv: Sequence[str], shell: str | None) -> list[str]:
    """The user's command: `--shell 'CMD'` or `-- PROGRAM ARGS...`; `UsageError` for neither or both."""
    command = list(argv)
    if command and command[0] == "--":
        command = command[1:]
    if shell and command:
        raise UsageError("give either --shell 'CMD' or -- PROGRAM ARGS..., not both")
    if shell:
        command = ["/bin/sh", "-c", shell]
    if not command:
        raise UsageError("no command to run: add --shell 'CMD' or -- PROGRAM ARGS...")
    return command


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from the arguments, each falling back to the environment; `UsageError` when incomplete."""
    args = _parser().parse_args(list(argv))

    def pick(value: str | None, *names: str) -> str:
        if value:
            return value
        for name in names:
            if environ.get(name):
                return environ[name]
        return ""

    command = _command(args.argv, args.shell)
    try:
        role = pick(args.role, tfc.ENV_ROLE)
        index = pick(args.index, tfc.ENV_INDEX)
        counts_text = pick(args.members, tfc.ENV_MEMBERS)
        if not role or not index.isdigit() or not counts_text:
            raise UsageError(
                f"--role/${tfc.ENV_ROLE}, --index/${tfc.ENV_INDEX} and --members/${tfc.ENV_MEMBERS} "
                "are needed"
            )
        member = tfc.Member(role, int(index))
        counts = tfc.parse_role_counts(counts_text)
        if member not in tfc.expected_members(counts):
            raise UsageError(f"{member} is not a member of a job with {counts_text}")
        settings = Settings(member=member, counts=counts, command=command)
        if not settings.distributed:
            return settings  # a single task: no ZooKeeper, no TF_CONFIG
        zk_url = pick(args.zk, tfc.ENV_ZK)
        job_id = pick(args.job_id, tfc.ENV_JOB_ID)
        port = pick(args.port, tfc.ENV_PORT, "PORT0")
        host = pick(args.host, tfc.ENV_HOST) or socket.gethostname()
        timeout_text = pick(args.timeout, tfc.ENV_TIMEOUT) or f"{tfc.DEFAULT_RENDEZVOUS_TIMEOUT:g}"
        if not zk_url or not job_id or not port.isdigit():
            raise UsageError(
                f"--zk/${tfc.ENV_ZK}, --job-id/${tfc.ENV_JOB_ID} and --port/${tfc.ENV_PORT} are needed"
            )
        tfc.parse_zk_url(zk_url)
        tfc.job_path(job_id)
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise UsageError(f"rendezvous timeout must be seconds, got {timeout_text!r}") from None
        return Settings(
            member=member,
            counts=counts,
            command=command,
            zk_url=zk_url,
            job_id=job_id,
            host=host,
            port=int(port),
            timeout=timeout,
        )
    except tfc.ClusterError as exc:
        raise UsageError(str(exc)) from exc


def say(message: str) -> None:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


class _Terminated(BaseException):
    """A forwarded signal arrived before the command was started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class CommandRunner:
    """Runs the user's command as a child process and forwards SIGTERM, SIGINT and SIGHUP to it.

    A signal that arrives before the child exists interrupts the rendezvous (`_Terminated`); one that
    arrives while the child is being started is delivered to it once it is.
    """

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self._starting = False
        self._pending: int | None = None

    def install(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.child is not None:
            self.child.send_signal(signum)
        elif self._starting:
            self._pending = signum
        else:
            raise _Terminated(signum)

    def run(self, command: list[str], env: Mapping[str, str]) -> int:
        self._starting = True
        try:
            self.child = subprocess.Popen(command, env=dict(env))
        except OSError as exc:
            say(f"cannot start {command[0]!r}: {exc}")
            return EXIT_NOT_STARTED
        finally:
            self._starting = False
        if self._pending is not None:
            self.child.send_signal(self._pending)
        code = self.child.wait()
        return 128 - code if code < 0 else code


def install_memory_hook(env: dict[str, str]) -> str | None:
    """With MESOS_GPU_MEMORY_LIMIT_MB in `env`: write the TensorFlow memory hook (tfmemory.py and a
    sitecustomize.py that installs it) into a new directory (in the sandbox when there is one) and put
    it first on `env`'s PYTHONPATH; return the directory (the caller removes it), else None."""
    if not env.get(ENV_GPU_MEMORY_LIMIT, "").strip():
        return None
    source = pkgutil.get_data("mesos_gpu.tf", "tfmemory.py")
    if source is None:
        say("the TensorFlow memory hook is missing from the launcher; the limit is not announced")
        return None
    sandbox = env.get("MESOS_SANDBOX") or ""
    directory = tempfile.mkdtemp(prefix=".mesos-gpu-tf-", dir=sandbox if os.path.isdir(sandbox) else None)
    with open(os.path.join(directory, f"{MEMORY_HOOK_MODULE}.py"), "wb") as module:
        module.write(source)
    with open(os.path.join(directory, "sitecustomize.py"), "w") as site:
        site.write(f"import {MEMORY_HOOK_MODULE}\n{MEMORY_HOOK_MODULE}.install(__file__)\n")
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = directory + (os.pathsep + path if path else "")
    return directory


def run(settings: Settings, environ: Mapping[str, str]) -> int:
    """Rendezvous (for a distributed job), then run the command; the exit status to return."""
    env = dict(environ)
    hook = install_memory_hook(env)
    try:
        return _run(settings, env)
    finally:
        if hook is not None:
            shutil.rmtree(hook, ignore_errors=True)


def _run(settings: Settings, env: dict[str, str]) -> int:
    runner = CommandRunner()
    runner.install()
    if not settings.distributed:
        env.pop(tfc.ENV_TF_CONFIG, None)
        return runner.run(settings.command, env)

    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError

    from mesos_gpu.tf.rendezvous import Rendezvous, RendezvousTimeoutError

    hosts, chroot = tfc.parse_zk_url(settings.zk_url)
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S)
    rendezvous = None
    try:
        try:
            client.start(timeout=min(max(settings.timeout, 1.0), 30.0))
        except KazooTimeoutError:
            say(f"cannot reach ZooKeeper at {hosts}")
            return EXIT_ZOOKEEPER
        rendezvous = Rendezvous(
            client, settings.job_id, settings.member, settings.address, settings.counts, chroot=chroot
        )
        rendezvous.register()
        replaced = " (replaced the node of its previous run)" if rendezvous.replaced_stale_node else ""
        say(
            f"{settings.member} registered {settings.address} in job {settings.job_id}{replaced}; "
            f"waiting for {len(rendezvous.expected)} members ({tfc.format_role_counts(settings.counts)})"
        )
        try:
            addresses = rendezvous.wait(settings.timeout)
        except RendezvousTimeoutError as exc:
            say(str(exc))
            return EXIT_RENDEZVOUS_TIMEOUT
        config = tfc.tf_config_json(addresses, settings.member)
        assert config is not None
        env[tfc.ENV_TF_CONFIG] = config
        say(f"cluster complete: {json.dumps(tfc.cluster_spec(addresses), separators=(',', ':'))}")
        return runner.run(settings.command, env)
    except _Terminated as exc:
        say(f"stopped by signal {exc.signum} before the command started")
        return 128 + exc.signum
    finally:
        if rendezvous is not None:
            rendezvous.leave()
        try:
            client.stop()
            client.close()
        except Exception:  # closing is best effort; the session expires anyway
            pass


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of `python3 launcher.pyz ...` and `python -m mesos_gpu.tf.launcher ...`."""
    logging.basicConfig(level=logging.WARNING, format=f"{PREFIX}: %(levelname)s %(name)s: %(message)s")
    environ = os.environ if environ is None else environ
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv, environ)
    except UsageError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    return run(settings, environ)


if __name__ == "__main__":
    sys.exit(main())
