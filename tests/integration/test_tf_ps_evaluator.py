"""Issue 19 item 5: a ParameterServerStrategy job with and without an evaluator, end to end on the local
cluster with real TensorFlow (CPU). As in Kubeflow's TFJob (genClusterSpec skips the evaluator: it is
not part of the training cluster), no task's TF_CONFIG names the evaluator, so the chief's
`ClusterCoordinator` never waits for a server the evaluator does not run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.zookeeper, pytest.mark.tensorflow, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("ps_train.py")
SMALL = {"cpus": 0.2, "mem": 64}


def ps_job(out: Path, evaluator: bool) -> Any:
    roles: dict[str, Any] = {"chief": SMALL, "ps": SMALL, "worker": SMALL}
    if evaluator:
        roles["evaluator"] = SMALL
    return validate_job({
        "name": "ps-eval" if evaluator else "ps",
        "command": f"{sys.executable} {SCRIPT} {out}",
        "env": {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
        "roles": roles,
        "rendezvous_timeout_seconds": 60,
        "deadline_seconds": 90,  # before the fix, the chief waited for the evaluator until this
    })


@pytest.mark.parametrize("evaluator", [False, True], ids=["without-evaluator", "with-evaluator"])
def test_a_ps_job_trains_and_succeeds(runtime: SchedulerRuntime, tmp_path: Path, evaluator: bool) -> None:
    view, _ = runtime.submit(ps_job(tmp_path, evaluator))
    done = wait_for(
        lambda: (job := runtime.job(view["id"]))["state"] in ("SUCCEEDED", "FAILED", "KILLED") and job,
        120, f"the job did not end: {runtime.job(view['id'])}",
    )
    assert done["state"] == "SUCCEEDED", (done["message"], done["members"])
    assert json.loads((tmp_path / "chief.json").read_text()) == {"steps": 3}
    training = {"chief", "ps", "worker"}
    for role in training:
        config = json.loads((tmp_path / f"{role}.tf_config.json").read_text())
        assert set(config["cluster"]) == training, config
    if evaluator:
        config = json.loads((tmp_path / "evaluator.tf_config.json").read_text())
        assert config["task"] == {"type": "evaluator", "index": 0}
        assert set(config["cluster"]) == training, config  # TFJob: the evaluator is not in the cluster
        # Killed with the ps and the worker once the chief succeeded.
        wait_for(lambda: runtime.job(view["id"])["members"]["evaluator-0"]["state"] == "TASK_KILLED", 30,
                 f"the evaluator was not killed: {runtime.job(view['id'])['members']}")
