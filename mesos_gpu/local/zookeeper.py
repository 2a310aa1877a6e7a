"""A standalone ZooKeeper server from the local install (Debian's `zookeeper` package).

Used by `mesos-gpu local`, `make demo` and the test fixtures: it writes a `zoo.cfg` into a private
directory, starts `QuorumPeerMain` on a loopback port, waits until the server serves clients (`srvr`
reports its version), and stops it (SIGTERM, then SIGKILL) on `stop()` or as a context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

DEFAULT_JAVA_DIR = Path("/usr/share/java")
INSTALL_HINT = (
    "ZooKeeper is not installed. On Debian or Ubuntu run, as root: "
    "apt-get install -y zookeeper   (or run `make test` / `make demo` as root, which installs it). "
    "To use an existing ensemble instead, set ZOOKEEPER_URL=host:port."
)

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File={log_file}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} [%t] %-5p %c{{1}} - %m%n
"""


class ZooKeeperError(RuntimeError):
    """ZooKeeper could not be found, started, or reached; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def four_letter_word(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command (e.g. `ruok`) and return the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def find_classpath(java_dir: Path = DEFAULT_JAVA_DIR) -> list[Path]:
    """The jars the server needs, or a `ZooKeeperError` naming the fix when they are missing."""
    jars = [
        java_dir / "zookeeper.jar",
        java_dir / "slf4j-log4j12.jar",
        java_dir / "log4j-1.2.jar",
    ]
    missing = [str(jar) for jar in jars if not jar.exists()]
    if missing:
        raise ZooKeeperError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    return jars


@dataclass
class ZooKeeperServer:
    """One standalone ZooKeeper server on `host:port` (a free port when `port` is 0).

    Example::

        with ZooKeeperServer() as zk:
            client = KazooClient(hosts=zk.hosts)
    """

    host: str = "127.0.0.1"
    port: int = 0
    workdir: Path | None = None
    java: str = "java"
    java_dir: Path = DEFAULT_JAVA_DIR
    heap_mb: int = 256
    start_timeout: float = 30.0
    # ZooKeeper's tick (ms): it grants sessions of 2 to 20 ticks (4-40 s at its default of 2000 ms).
    tick_ms: int = 2000
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_workdir: bool = field(default=False, init=False, repr=False)

    @property
    def hosts(self) -> str:
        """The connection string for kazoo (`host:port`)."""
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "zookeeper.log"

    def start(self) -> ZooKeeperServer:
        if shutil.which(self.java) is None:
            raise ZooKeeperError(
                f"`{self.java}` was not found; ZooKeeper needs a Java runtime. {INSTALL_HINT}"
            )
        classpath = find_classpath(self.java_dir)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="mesos-gpu-zk-"))
            self._own_workdir = True
        if self.port == 0:
            self.port = free_port(self.host)
        conf_dir = self.workdir / "conf"
        data_dir = self.workdir / "data"
        conf_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "zoo.cfg").write_text(
            "\n".join(
                [
                    f"tickTime={self.tick_ms}",
                    f"dataDir={data_dir}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,srvr,stat,mntr",
                    "maxClientCnxns=0",
                    "",
                ]
            )
        )
        (conf_dir / "log4j.properties").write_text(LOG4J_PROPERTIES.format(log_file=self.log_file))
        command = [
            self.java,
            f"-Xmx{self.heap_mb}m",
            "-cp",
            os.pathsep.join([str(conf_dir), *map(str, classpath)]),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(conf_dir / "zoo.cfg"),
        ]
        out = (self.workdir / "zookeeper.out").open("wb")
        try:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            out.close()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._cleanup_dirs()
                raise ZooKeeperError(
                    f"ZooKeeper exited with status {self._process.returncode} while starting on "
                    f"{self.hosts}; its output:\n{self._tail()}"
                )
            try:
                # `ruok` answers `imok` before the server serves clients; `srvr` tells the truth.
                answer = four_letter_word(self.host, self.port, "srvr")
                if answer.startswith("Zookeeper version:"):
                    return
                last_error = answer.strip() or "empty answer to srvr"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.1)
        tail = self._tail()
        self.stop()
        raise ZooKeeperError(
            f"ZooKeeper did not answer on {self.hosts} within {self.start_timeout:.0f} s "
            f"({last_error}); its output:\n{tail}"
        )

    def _tail(self, lines: int = 30) -> str:
        if self.workdir is None:
            return ""
        text = []
        for name in ("zookeeper.out", "zookeeper.log"):
            path = self.workdir / name
            if path.exists():
                text.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(text)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`) and remove a temporary workdir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._cleanup_dirs()

    def _cleanup_dirs(self) -> None:
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self._own_workdir = False

    def __enter__(self) -> ZooKeeperServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
