"""A job carrying code (a `uris` tar.gz served over HTTP, extracted), data (a host-path volume) and a
secret (env variable and file, from the local agent's secrets directory) runs on the local cluster under
the real scheduler and API; the task sees the secret (it prints a hash of it, never the value), and the
value is in no API view, no CLI output, no status message, no log record of the scheduler, API, master
or agent, no file of the stack's work directory, and no ZooKeeper node. A job whose secret is missing
fails with a message that names the secret and says why."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import secrets as random
import sys
import tarfile
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.client import ApiClient
from mesos_gpu.standalone import Standalone
from tests.cli.conftest import run_cli
from tests.integration.conftest import LogRecords
from tests.waiting import wait_until

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

VALUE = f"pw-{random.token_hex(16)}"   # fresh each run: a hit can only be a leak
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()
PROGRAM = """
import hashlib, os, pathlib
print("code", pathlib.Path("app/VERSION").read_text().strip())
print("env", hashlib.sha256(os.environ["DB_PASSWORD"].encode()).hexdigest())
print("file", hashlib.sha256(pathlib.Path("secrets/db").read_bytes()).hexdigest())
print("data", pathlib.Path("inputs/data/greeting.txt").read_text().strip())
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server of a directory holding `app.tar.gz` (app/run.py, app/VERSION); its base URL."""
    root = tmp_path_factory.mktemp("served")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("app/run.py", PROGRAM), ("app/VERSION", "v42\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (root / "app.tar.gz").write_bytes(buffer.getvalue())

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory the job mounts read-only."""
    directory = tmp_path_factory.mktemp("data")
    (directory / "greeting.txt").write_text("hello from the host\n")
    return directory


@pytest.fixture(scope="module")
def stack(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory,
          records: LogRecords) -> Iterator[Standalone]:
    secrets_dir = tmp_path_factory.mktemp("secrets")
    (secrets_dir / "team").mkdir()
    (secrets_dir / "team" / "db").write_text(VALUE)
    stack = Standalone(
        zk_hosts=zk_hosts,
        framework_name=f"secrets-{uuid.uuid4().hex[:8]}",
        workdir=tmp_path_factory.mktemp("stack"),
        agents=1,
        tick_seconds=0.2,
        cluster_options={"allocation_interval": 0.2, "agent_options": {"secrets_dir": str(secrets_dir)}},
    )
    with stack:
        yield stack


def job(served: str, data: Path, source: str = "team/db") -> dict[str, Any]:
    return {
        "name": "carry",
        "command": f"{sys.executable} app/run.py",
        "cpus": 0.5,
        "mem": 128,
        "uris": [f"{served}/app.tar.gz"],
        "secrets": {"db": {"source": source}},
        "env": {"DB_PASSWORD": {"secret": "db"}, "PLAIN": "visible"},
        "volumes": [
            {"container_path": "secrets/db", "secret": "db"},
            {"container_path": "inputs/data", "host_path": str(data), "mode": "RO"},
        ],
    }


def finished(client: ApiClient, job_id: str) -> dict[str, Any]:
    return wait_until(lambda: (view := client.job(job_id))["terminal"] and view, 90, f"job {job_id} ended")


def test_the_task_sees_the_secret_and_no_view_or_log_shows_it(
    stack: Standalone, served: str, data: Path, records: LogRecords
) -> None:
    client = ApiClient(stack.api_url)
    submitted, _ = client.submit(job(served, data))
    view = finished(client, submitted["id"])
    assert view["state"] == "SUCCEEDED", view
    out = client.logs(submitted["id"], "task-0")["data"]
    assert out.splitlines() == ["code v42", f"env {DIGEST}", f"file {DIGEST}", "data hello from the host"]

    assert view["spec"]["env"] == {"DB_PASSWORD": {"secret": "db"}, "PLAIN": "visible"}
    assert view["spec"]["secrets"] == {"db": {"source": "team/db"}}
    seen = [json.dumps(view), json.dumps(client.tasks(submitted["id"])), json.dumps(list(client.jobs())),
            json.dumps(client.logs(submitted["id"], "task-0", "stderr")), *records.lines]
    cli = run_cli("status", submitted["id"], "-o", "json", api=stack.api_url)
    assert cli.returncode == 0, cli.stderr
    seen += [cli.stdout, cli.stderr, run_cli("status", submitted["id"], api=stack.api_url).stdout]
    assert stack.cluster is not None
    seen.append(urllib.request.urlopen(f"http://{stack.cluster.master_address}/master/state", timeout=10)
                .read().decode())
    assert records.lines and "carry" in "\n".join(seen)   # the places looked at do hold the job
    for text in seen:
        assert VALUE not in text
    assert _zookeeper_holds(stack, VALUE) is False
    assert _zookeeper_holds(stack, "team/db") is True     # the reference is stored, the value is not
    leaks = [path for path in Path(str(stack.workdir)).rglob("*")
             if path.is_file() and not path.is_symlink() and VALUE.encode() in path.read_bytes()]
    assert leaks == []
    assert not any((Path(str(stack.workdir))).rglob("volume-0"))   # the secret file went with its task


def test_a_missing_secret_fails_the_task_naming_the_secret_only(stack: Standalone, served: str, data: Path
                                                                 ) -> None:
    client = ApiClient(stack.api_url)
    submitted, _ = client.submit(job(served, data, source="team/absent"))
    view = finished(client, submitted["id"])
    assert view["state"] == "FAILED"
    (task,) = view["tasks"]
    assert task["state"] == "TASK_FAILED"
    assert task["message"] == (
        "Failed to launch container: secret 'team/absent' is not in the agent's secrets directory"
    )
    assert VALUE not in json.dumps(view)


def _zookeeper_holds(stack: Standalone, text: str) -> bool:
    """Whether any node under the framework's ZooKeeper chroot holds `text`."""
    assert stack.store is not None
    zk = stack.store.client
    base = "/" + stack.zk_url.split("/", 3)[3]
    pending, found = [base], False
    while pending:
        path = pending.pop()
        data, _ = zk.get(path)
        found = found or text.encode() in (data or b"")
        pending.extend(f"{path.rstrip('/')}/{child}" for child in zk.get_children(path))
    return found
