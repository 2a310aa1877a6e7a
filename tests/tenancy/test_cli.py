"""`mesos-gpu tenants` (the real CLI in a subprocess): against the real API on a runtime with the memory
store, and end to end on the local cluster with real ZooKeeper, where a job beyond its tenant's quota
waits saying why and runs once the quota allows it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_gpu.api.app import close_app, make_app
from mesos_gpu.api.server import ApiServer
from mesos_gpu.client import ApiClient
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.standalone import Standalone
from mesos_gpu.store.memory import MemoryBackend, MemoryStore
from tests.api.conftest import LAUNCHER, make_runtime, started
from tests.cli.conftest import local, run_cli  # noqa: F401 - `local`: the live local stack (fixture)
from tests.waiting import wait_until

DOCUMENT = {"tenants": {"team-a": {"quota": 1, "may_borrow": False}, "team-b": {"quota": 2.5, "weight": 2}}}


@pytest.fixture
def api() -> Iterator[str]:
    """The real API on a port, on a runtime with the memory store (no Mesos: jobs stay PENDING)."""
    runtime = make_runtime(MemoryStore(MemoryBackend()))
    app = make_app(runtime, settings=SchedulerSettings(), launcher_bundle=LAUNCHER, master_url="127.0.0.1:1")
    server = ApiServer("127.0.0.1", 0)
    server.bind()
    server.start(app)
    started(runtime)
    try:
        yield server.url
    finally:
        server.stop()
        close_app(app)
        runtime.stop()


def test_tenants_set_show_json_and_reset(api: str, tmp_path: Path) -> None:
    empty = run_cli("tenants", api=api)
    assert empty.returncode == 0, empty.stderr
    assert "No quotas apply" in empty.stdout
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(DOCUMENT))
    changed = run_cli("tenants", "set", "--file", str(path), api=api)
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    header = ["TENANT", "QUOTA", "LIMIT", "BORROWS", "WEIGHT", "USED", "BORROWED", "WAITING"]
    assert lines[0].split() == header
    assert lines[1].split() == ["team-a", "1", "-", "no", "1", "0", "0", "0", "(0", "GPUs)"]
    assert lines[2].split() == ["team-b", "2.5", "-", "yes", "2", "0", "0", "0", "(0", "GPUs)"]
    assert "Quotas set through the API (version 0)" in changed.stdout
    shown = run_cli("tenants", "-o", "json", api=api)
    body = json.loads(shown.stdout)
    assert (body["source"], [t["name"] for t in body["tenants"]]) == ("store", ["team-a", "team-b"])
    assert run_cli("tenants", "-o", "name", api=api).stdout == "team-a\nteam-b\n"
    reset = run_cli("tenants", "reset", "--json", api=api)
    assert json.loads(reset.stdout)["source"] == "none"


def test_a_bad_document_is_one_sentence_naming_the_field(api: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"tenants": {"team-a": {"quota": 1, "limit": 0.5}}}))
    result = run_cli("tenants", "set", "--file", str(path), api=api)
    assert result.returncode == 1
    assert "/tenants/team-a/limit" in result.stderr and "below the quota" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("tenants", "set", "--file", str(tmp_path / "nope.json"), api=api)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_on_the_local_cluster_a_job_beyond_its_quota_waits_and_runs_when_allowed(
        local: Standalone, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"team-a": {"quota": 1, "may_borrow": False}}}))
    assert run_cli("tenants", "set", "--file", str(path), api=local.api_url).returncode == 0
    client = ApiClient(local.api_url)
    try:
        first, _ = client.submit({"name": "first", "command": "sleep 60", "gpus": 1, "tenant": "team-a"})
        wait_until(lambda: client.job(first["id"])["state"] == "RUNNING", 60, "the first job to run")
        second, _ = client.submit({"name": "second", "command": "true", "gpus": 1, "tenant": "team-a"})
        reason = "team-a uses 1 of its 1 GPUs; the job needs 1; team-a may not borrow"
        wait_until(lambda: client.job(second["id"])["wait_reason"] == reason, 30, "the quota's wait reason")
        shown = run_cli("tenants", api=local.api_url)
        assert shown.stdout.splitlines()[1].split()[:7] == ["team-a", "1", "-", "no", "1", "1", "0"]
        assert "1 (1 GPUs)" in shown.stdout
        path.write_text(json.dumps({"tenants": {"team-a": {"quota": 2}}}))      # raised at run time
        assert run_cli("tenants", "set", "--file", str(path), api=local.api_url).returncode == 0
        wait_until(lambda: client.job(second["id"])["state"] == "SUCCEEDED", 60, "the second job to run")
        client.kill(first["id"])
    finally:
        run_cli("tenants", "reset", api=local.api_url)


def test_set_needs_a_file_and_file_is_only_for_set(api: str) -> None:
    result = run_cli("tenants", "set", api=api)
    assert result.returncode == 1 and "needs --file" in result.stderr
    other = run_cli("tenants", "reset", "--file", "x.json", api=api)
    assert other.returncode == 1 and "--file is for `tenants set`" in other.stderr
