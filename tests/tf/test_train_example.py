"""examples/tf_distributed/train.py for real: two TensorFlow processes (chief + worker) on loopback
ports with a TF_CONFIG built by mesos_gpu.core.tfconfig, training together with
MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.local.zookeeper import free_port

from .conftest import REPO

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

TRAIN = REPO / "examples" / "tf_distributed" / "train.py"


def test_two_workers_train_together_and_each_prints_its_result(tmp_path):
    # The job's TF_CONFIG also names a ps (as examples/tf_distributed/job.json has one): all-reduce
    # training must leave it out, or TensorFlow would wait for it forever. It is not even started here.
    cluster = tfc.expected_members({"chief": 1, "ps": 1, "worker": 1})
    addresses = {m: f"127.0.0.1:{free_port()}" for m in cluster}
    members = [m for m in cluster if m.role != "ps"]
    processes = []
    for member in members:
        env = {**os.environ, "TF_CONFIG": tfc.tf_config_json(addresses, member), "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        with (tmp_path / f"{member}.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(TRAIN), "--steps", "150"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    cwd=tmp_path,
                    start_new_session=True,
                )
            )
    started = time.monotonic()
    results = []
    try:
        for member, process in zip(members, processes, strict=True):
            out, _ = process.communicate(timeout=240)
            stderr = (tmp_path / f"{member}.log").read_text()[-3000:]
            assert process.returncode == 0, stderr
            lines = [line for line in out.splitlines() if line.startswith("{")]
            assert len(lines) == 1, out
            results.append(json.loads(lines[0]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.monotonic() - started
    assert [(r["role"], r["index"]) for r in results] == [("chief", 0), ("worker", 0)]
    for result in results:
        assert result["steps"] == 150
        assert result["workers"] == 2  # both took part in every all-reduce
        assert result["accuracy"] > 0.85
        assert 0 < result["loss"] < 0.6
    # Synchronous training: the same averaged gradients, so the same final loss and accuracy on both.
    assert results[0]["loss"] == results[1]["loss"]
    assert results[0]["accuracy"] == results[1]["accuracy"]
    print(f"two-worker training took {elapsed:.1f} s: {results}")
