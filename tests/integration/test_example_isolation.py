"""examples/isolation/README.md run as written: the commands of its "Run it on this machine" block
(parsed from the README, so that this test breaks when the README changes) against `mesos-gpu local`,
started in the background as the README says, and what it promises checked: 4 tasks on 4 distinct
simulated GPUs, indices 0 and 1 on each of the 2 agents, each task's index and UUID shown by `mesos-gpu
status` and the same index in the task's own CUDA_VISIBLE_DEVICES. The image variant needs a registry
to build from (none here): only its consistency with the host variant is checked."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from tests.integration.test_example_readmes import (  # noqa: F401 - readme_local is a fixture
    EXAMPLES,
    Block,
    Shell,
    host_block,
    readme_local,
    run_block,
)

# status rows: "worker-0  FINISHED  127.0.0.2 (S1)  1 (exclusive) on GPU 0 (GPU-...)  0"
STATUS_ROW = re.compile(
    r"^\s*(worker-\d)\s+\S+\s+\S+ \((\S+)\)\s+1 \(exclusive\) on GPU (\d+) \((GPU-[0-9a-f-]+)\)", re.MULTILINE
)
NOT_USED = ("Docker image 'mesos-gpu/isolation:latest' was NOT used: no Docker engine is reachable; "
            "the command runs on the host")
LOG_LINE = re.compile(
    r"^(worker-\d) on \S+: CUDA_VISIBLE_DEVICES=(\S+) NVIDIA_VISIBLE_DEVICES=(\S+)$", re.MULTILINE
)


@pytest.fixture
def no_docker_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker engine for the local cluster started after this fixture (whatever this host has)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/mesos-gpu-test/docker.sock")


@pytest.mark.parametrize("readme_local", ["isolation"], indirect=True)
@pytest.mark.zookeeper
@pytest.mark.slow
def test_the_isolation_example_runs_as_its_readme_says(
    no_docker_engine: None, readme_local: tuple[Block, Shell]  # noqa: F811
) -> None:
    block, shell = readme_local
    _, (status, logs) = run_block(block, shell)
    shown = {name: (agent, int(index), uuid) for name, agent, index, uuid in STATUS_ROW.findall(status)}
    assert sorted(shown) == [f"worker-{i}" for i in range(4)], status
    assert len({uuid for _, _, uuid in shown.values()}) == 4, status   # 4 devices, none given twice
    per_agent: dict[str, list[int]] = defaultdict(list)
    for agent, index, _ in shown.values():
        per_agent[agent].append(index)
    assert sorted(sorted(indices) for indices in per_agent.values()) == [[0, 1], [0, 1]], status
    seen = {name: (cuda, nvidia) for name, cuda, nvidia in LOG_LINE.findall(logs)}
    assert sorted(seen) == sorted(shown), logs
    for name, (cuda, nvidia) in seen.items():   # the task sees the device the scheduler shows
        assert cuda == nvidia == str(shown[name][1]), (name, logs, status)
    assert logs.count("nvidia-smi: not found (no NVIDIA driver here)") == 4 or "UUID: GPU-" in logs
    # The README: without a Docker engine `job.json` still runs, its image NOT used, and says so.
    followed = shell.run("mesos-gpu submit --follow examples/isolation/job.json")
    assert re.search(r"ended SUCCEEDED; .*exit status 0", followed), followed
    job_id = re.search(r"Submitted job (\S+)\.", followed).group(1)  # type: ignore[union-attr]
    stderr = shell.run(f"mesos-gpu logs {job_id} --task worker-0 --stream stderr")
    assert NOT_USED in stderr, stderr


def test_the_host_job_is_the_image_job_without_its_image() -> None:
    image_job = json.loads((EXAMPLES / "isolation" / "job.json").read_text())
    host_job = json.loads((EXAMPLES / "isolation" / "job.host.json").read_text())
    assert "image" not in host_job
    same = {key: value for key, value in image_job.items() if key not in ("name", "image")}
    assert {key: value for key, value in host_job.items() if key != "name"} == same
    readme = (EXAMPLES / "isolation" / "README.md").read_text()
    assert f"docker build -t {image_job['image']} examples/isolation" in readme
    assert (EXAMPLES / "isolation" / "Dockerfile").exists()
    # the host block comes first, and needs no Docker
    block = host_block("isolation")
    assert readme.index("## Run it on this machine") < readme.index("docker build")
    assert not any("docker" in line for line in [block.setup, block.local, *block.commands])
