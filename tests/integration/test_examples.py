"""The examples end to end on the embedded local cluster, through the REST API (what `make demo` runs)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mesos_gpu.client import ApiClient
from mesos_gpu.demo import run_demo, settled
from mesos_gpu.standalone import Standalone
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.tensorflow
def test_the_distributed_tensorflow_demo_trains_every_worker_and_kills_the_ps(tmp_path: Path) -> None:
    out = io.StringIO()
    status = run_demo(out, steps=100, workdir=tmp_path)
    text = out.getvalue()
    assert status == 0, text
    assert re.search(r"ended SUCCEEDED", text), text
    results = dict(re.findall(r"^  (chief-0|worker-0)\s+loss (\S+)", text, re.MULTILINE))
    assert sorted(results) == ["chief-0", "worker-0"], text
    # Synchronous all-reduce: both trained the same model.
    assert results["chief-0"] == results["worker-0"]
    assert "ps tasks killed after success: yes (ps-0 TASK_KILLED)" in text


def test_the_isolation_example_shows_each_task_a_distinct_gpu_set(tmp_path: Path) -> None:
    job = json.loads((EXAMPLES / "isolation" / "job.json").read_text())
    job.pop("image")  # no registry here: the local agents run the command on the host
    with Standalone(agents=2, gpus_per_agent=2, workdir=tmp_path) as local:
        api = ApiClient(local.api_url)
        submitted, _ = api.submit(job)
        final = wait_for(
            lambda: (j := api.job(submitted["id"]))["state"] in ("SUCCEEDED", "FAILED") and j, 60,
            "the isolation job did not end",
        )
        assert final["state"] == "SUCCEEDED", final
        final = settled(api, final)
        seen: dict[str, list[str]] = {}
        for task in final["tasks"]:
            stdout = api.logs(final["id"], task=task["name"])["data"]
            match = re.search(r"CUDA_VISIBLE_DEVICES=(\S+) NVIDIA_VISIBLE_DEVICES=(\S+)", stdout)
            assert match, stdout
            assert match.group(1) == match.group(2)
            seen.setdefault(task["agent_id"], []).append(match.group(1))
    # 4 one-GPU tasks on 2 agents with 2 GPUs each: on each agent, two tasks with different GPUs.
    assert sorted(len(gpus) for gpus in seen.values()) == [2, 2]
    for gpus in seen.values():
        assert len(set(gpus)) == len(gpus), seen
        assert all(len(g.split(",")) == 1 for g in gpus)
