"""`mesos-gpu local` as users run it: starts ZooKeeper, the local cluster, the scheduler and the API,
prints the URL, runs a job, and stops everything on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from mesos_gpu.client import ApiClient
from tests.cli.conftest import cli_command


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.zookeeper
def test_local_runs_a_job_and_stops_everything_on_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    errors = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen(
        cli_command("local", "--port", "0", "--workdir", str(tmp_path / "work")),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while not any("Press Ctrl-C" in line for line in lines):
            line = process.stdout.readline()
            assert line or process.poll() is None, (tmp_path / "stderr").read_text()
            lines.append(line)
            assert time.monotonic() < deadline, lines
        text = "".join(lines)
        api_url = re.search(r"API (http://127\.0\.0\.1:\d+)", text).group(1)  # type: ignore[union-attr]
        zk_port = int(re.search(r"ZooKeeper zk://127\.0\.0\.1:(\d+)/", text).group(1))  # type: ignore[union-attr]
        master_port = int(re.search(r"Mesos master http://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]

        api = ApiClient(api_url)
        health = api.health()
        assert health["role"] == "leader" and health["mesos"]["connected"]
        job, _ = api.submit({"name": "hello", "command": "echo hello", "gpus": 1})
        deadline = time.monotonic() + 60
        while not (job := api.job(job["id"]))["terminal"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job["state"] == "SUCCEEDED"
        assert api.logs(job["id"])["data"] == "hello\n"

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        api_port = int(api_url.rsplit(":", 1)[1])
        for port in (api_port, zk_port, master_port):
            assert not port_open("127.0.0.1", port), f"port {port} still open after SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stdout is not None
        process.stdout.close()
        errors.close()


def test_a_busy_port_is_explained_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            cli_command("local", "--port", str(port)), capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"mesos-gpu: port {port} on 127.0.0.1 is already in use; "
        "choose another with --port (0 picks a free one)."
    )
    assert done.stdout == ""


def test_help_spells_the_real_gpu_mode_nvml() -> None:
    command = cli_command("local", "--help")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    help_text = " ".join(done.stdout.split())
    assert "'nvml'" in help_text and "'host' for" not in help_text


@pytest.mark.parametrize(("command", "mode"), [(("local", "--port", "0", "--zk", "127.0.0.1:1"), "nvml"),
                                             (("local", "--port", "0", "--zk", "127.0.0.1:1"), "host"),
                                             (("local", "up"), "nvml")])
def test_gpus_nvml_without_nvml_fails_with_the_nvml_message(command: tuple[str, ...], mode: str) -> None:
    from mesos_gpu.local.agent.gpus import NvmlUnavailableError, host_devices

    env = {k: v for k, v in os.environ.items() if k != "MESOS_GPU_FAKE_GPUS"}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("MESOS_GPU_FAKE_GPUS", raising=False)
            host_devices()
        pytest.skip("this host has NVML")
    except NvmlUnavailableError:
        pass
    done = subprocess.run(  # --zk: nothing listens there, so a start that went on would fail too
        cli_command(*command, "--gpus-per-agent", mode),
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "--gpus-per-agent nvml: NVML is unavailable" in done.stderr, done.stderr


@pytest.mark.parametrize("command", [("local", "--port", "0", "--zk", "127.0.0.1:1"), ("local", "up")])
def test_a_secrets_dir_that_is_not_a_directory_is_refused_before_anything_starts(
    tmp_path, command: tuple[str, ...]  # type: ignore[no-untyped-def]
) -> None:
    done = subprocess.run(
        cli_command(*command, "--secrets-dir", str(tmp_path / "absent")),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"--secrets-dir {tmp_path / 'absent'}: not a directory" in done.stderr


def test_the_secrets_dir_reaches_the_agents_setting(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import argparse

    from mesos_gpu.local.agent.agent import AgentConfig
    from mesos_gpu.local.cli import apply_secrets_dir

    monkeypatch.delenv("MESOS_GPU_SECRETS_DIR", raising=False)
    assert apply_secrets_dir(argparse.Namespace(secrets_dir=None)) is None
    assert "MESOS_GPU_SECRETS_DIR" not in os.environ
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    assert apply_secrets_dir(argparse.Namespace(secrets_dir="secrets")) is None
    assert os.environ["MESOS_GPU_SECRETS_DIR"] == str(tmp_path / "secrets")
    assert AgentConfig().secrets_dir == str(tmp_path / "secrets")
