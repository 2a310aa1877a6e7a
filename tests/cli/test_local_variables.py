"""`mesos-gpu local` honours the scheduler's tenants file, API tokens and retention variables
(reviewer finding 2): `standalone.local_settings` reads them, a live `Standalone` applies them, and a bad
tenants file ends `mesos-gpu local` with one line before anything starts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mesos_gpu import cli, standalone
from mesos_gpu.client import ApiClient, ApiError
from mesos_gpu.standalone import Standalone, local_settings

TENANTS = {"tenants": {"vision": {"quota": 1}}}


def test_local_settings_read_the_shared_variables(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("t1\n")
    settings = local_settings({
        "MESOS_GPU_TENANTS_FILE": str(tmp_path / "tenants.json"),
        "MESOS_GPU_API_TOKENS": "s3cret", "MESOS_GPU_API_AUTH_READS": "true",
        "MESOS_GPU_RETENTION_SECONDS": "3600", "MESOS_GPU_RETENTION_MAX_FINISHED": "7",
    })
    assert settings.tenants_file == str(tmp_path / "tenants.json")
    assert settings.api_tokens == ("s3cret",) and settings.api_auth_reads
    assert (settings.retention_seconds, settings.retention_max_finished) == (3600, 7)
    assert local_settings({"MESOS_GPU_API_TOKENS_FILE": str(tokens)}).api_tokens_file == str(tokens)


def test_a_live_local_stack_applies_them(zk_hosts: str, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(TENANTS))
    monkeypatch.setenv("MESOS_GPU_TENANTS_FILE", str(path))
    monkeypatch.setenv("MESOS_GPU_API_TOKENS", "s3cret")
    monkeypatch.setenv("MESOS_GPU_API_AUTH_READS", "true")
    monkeypatch.setenv("MESOS_GPU_RETENTION_MAX_FINISHED", "5")
    stack = Standalone(zk_hosts=zk_hosts, framework_name=f"vars-{uuid.uuid4().hex[:8]}", agents=1,
                       workdir=tmp_path / "local", tick_seconds=0.2)
    with stack:
        with pytest.raises(ApiError) as caught:
            ApiClient(stack.api_url).jobs_page()
        assert caught.value.status == 401                       # reads need the token
        tenants = ApiClient(stack.api_url, token="s3cret")._get("/v1/tenants")
        assert (tenants["source"], tenants["file"]) == ("file", str(path))
        assert stack.process is not None and stack.process.settings.retention_max_finished == 5


def test_a_bad_tenants_file_ends_local_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    def must_not_start(*args, **kwargs):
        raise AssertionError("started despite a bad tenants file")

    monkeypatch.setattr(standalone, "run_standalone", must_not_start)
    monkeypatch.setenv("MESOS_GPU_TENANTS_FILE", str(tmp_path / "absent.json"))
    status = cli.main(["local", "--gpus-per-agent", "1", "--port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    absent = tmp_path / "absent.json"
    assert err == [f"mesos-gpu: MESOS_GPU_TENANTS_FILE: cannot read the tenants file {absent}: "
                   "No such file or directory"]
