"""Each TF example's README, run as written: the commands of its "Run it on this machine" block (parsed
from the README, so that this test breaks when the README changes) against `mesos-gpu local`, started
in the background as the README says (on a free port instead of 8080), and the documented outcome
checked. The image variants need a registry to build from (none here): only their consistency with
the host variants and the Dockerfiles is checked."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesos_gpu.local.zookeeper import free_port
from tests.integration.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HOST_SECTION = "## Run it on this machine"
TF_EXAMPLES = ("tf_single", "tf_distributed", "tf_shares")


@dataclass
class Block:
    """A README's host-mode commands: `setup` (run before every other line), the background `local`
    line (without its `&`) and the commands after it, comments stripped."""

    setup: str
    local: str
    commands: list[str]


def host_block(example: str) -> Block:
    text = (EXAMPLES / example / "README.md").read_text()
    assert HOST_SECTION in text, f"{example}/README.md has no '{HOST_SECTION}' section"
    section = text.split(HOST_SECTION, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, f"{example}/README.md: no sh block under '{HOST_SECTION}'"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in match.group(1).splitlines()]
    lines = [line for line in lines if line]
    background = [i for i, line in enumerate(lines) if line.endswith("&")]
    assert len(background) == 1, lines
    at = background[0]
    return Block("\n".join(lines[:at]), lines[at].rstrip("&").strip(), lines[at + 1 :])


@dataclass
class Shell:
    """Runs README lines in bash from the repository root, after the block's setup lines."""

    setup: str
    env: dict[str, str]

    def run(self, line: str, timeout: float = 240) -> str:
        done = subprocess.run(
            ["bash", "-c", f"set -e\n{self.setup}\n{line}"], check=False, cwd=REPO, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{output}"
        return output


@pytest.fixture
def readme_local(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Block, Shell]]:
    """The example's block, with its `mesos-gpu local` line started in the background (on a free port),
    and a Shell for the lines after it, pointed at that API. Stops the local stack (SIGTERM, the
    README's Ctrl-C) at the end."""
    block = host_block(request.param)
    assert "--port 8080" in block.local, block.local
    local_line = block.local.replace("--port 8080", f"--port {free_port()}")
    log_path = tmp_path / "local.out"
    env = {k: v for k, v in os.environ.items() if k not in ("MESOS_GPU_API", "VIRTUAL_ENV")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["bash", "-c", f"{block.setup}\nexec {local_line}"], cwd=REPO, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        url = wait_for(
            lambda: process.poll() is None and re.search(r"API (http://\S+)", log_path.read_text()), 90,
            "mesos-gpu local did not start",
        ).group(1)
        yield block, Shell(block.setup, {**env, "MESOS_GPU_API": url})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this test started
            process.wait(timeout=10)


def run_block(block: Block, shell: Shell) -> tuple[str, list[str]]:
    """The submit line's output (it must end SUCCEEDED) and each later line's, with `<job-id>` filled in."""
    submit, *later = block.commands
    followed = shell.run(submit)
    assert re.search(r"ended SUCCEEDED; .*exit status 0", followed), followed
    job_id = re.search(r"Submitted job (\S+)\.", followed)
    assert job_id, followed
    return followed, [shell.run(line.replace("<job-id>", job_id.group(1))) for line in later]


def results(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"role"')]



@pytest.mark.parametrize("readme_local", ["tf_single"], indirect=True)
@pytest.mark.zookeeper
@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_single_runs_as_its_readme_says(readme_local: tuple[Block, Shell]) -> None:
    _, (logs,) = run_block(*readme_local)
    (result,) = results(logs)
    assert (result["role"], result["workers"], result["steps"]) == ("worker", 1, 300), logs


@pytest.mark.parametrize("readme_local", ["tf_distributed"], indirect=True)
@pytest.mark.zookeeper
@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_distributed_runs_as_its_readme_says(readme_local: tuple[Block, Shell]) -> None:
    followed, (chief_logs, worker_logs) = run_block(*readme_local)
    assert re.search(r"ps-0\s+KILLED", followed), followed
    (chief,) = results(chief_logs)
    (worker,) = results(worker_logs)
    assert (chief["role"], worker["role"], chief["workers"]) == ("chief", "worker", 2)
    assert chief["loss"] == worker["loss"]  # synchronous all-reduce: one model


@pytest.mark.parametrize("readme_local", ["tf_shares"], indirect=True)
@pytest.mark.zookeeper
@pytest.mark.slow
@pytest.mark.tensorflow
def test_tf_shares_runs_as_its_readme_says(readme_local: tuple[Block, Shell]) -> None:
    followed, (status, chief_logs) = run_block(*readme_local)
    devices = set(re.findall(r"(?:chief|worker)-0\s+FINISHED .*0\.5 GPU on (\S+)", followed))
    assert len(devices) == 1, followed  # both halves on the one GPU
    assert "0.5" in status, status
    (chief,) = results(chief_logs)
    assert chief["role"] == "chief"


@pytest.mark.parametrize("example", TF_EXAMPLES)
def test_the_host_job_is_the_image_job_without_its_image(example: str) -> None:
    image_job = json.loads((EXAMPLES / example / "job.json").read_text())
    host_job = json.loads((EXAMPLES / example / "job.host.json").read_text())
    assert "image" not in host_job and host_job["uris"] == ["@EXAMPLES@/tf_distributed/train.py"]
    for key in ("roles", "cpus", "mem", "gpus", "isolation", "success_policy"):
        assert host_job.get(key) == image_job.get(key), key
    # The image job's script is where its Dockerfile puts it; the host job runs the fetched copy.
    assert image_job["command"].startswith("python3 /app/train.py")
    assert host_job["command"].startswith("python3 train.py")
    dockerfile = (EXAMPLES / "tf_distributed" / "Dockerfile").read_text()
    assert "COPY tf_distributed/train.py /app/train.py" in dockerfile
    assert f"-t {image_job['image']} examples" in (EXAMPLES / example / "README.md").read_text()
