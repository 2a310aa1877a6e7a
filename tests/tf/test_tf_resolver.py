"""TensorFlow's own TFConfigClusterResolver reads the TF_CONFIG we generate (in a fresh subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.core.tfconfig import Member

pytestmark = pytest.mark.tensorflow

# Reads one TF_CONFIG per input line, sets it in os.environ and asks TensorFlow what it sees.
RESOLVE = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
for line in sys.stdin:
    os.environ["TF_CONFIG"] = line.strip()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    print(json.dumps({
        "cluster": spec.as_dict(),
        "task_type": resolver.task_type,
        "task_id": resolver.task_id,
        # The evaluator is not in the training cluster (TFJob), so it has no address of its own.
        "master": resolver.master() if resolver.task_type in spec.jobs else None,
        "num_tasks": {job: spec.num_tasks(job) for job in spec.jobs},
    }), flush=True)
"""

CASES = [
    ({"chief": 1, "ps": 2, "worker": 3, "evaluator": 1}, Member("worker", 2)),
    ({"chief": 1, "ps": 2, "worker": 3, "evaluator": 1}, Member("ps", 1)),
    ({"chief": 1, "ps": 2, "worker": 3, "evaluator": 1}, Member("evaluator", 0)),
    ({"worker": 12}, Member("worker", 10)),
]


def test_tensorflow_resolves_the_generated_tf_config():
    configs = []
    for counts, member in CASES:
        addresses = {m: f"host-{m.role}-{m.index}:{31000 + m.index}" for m in tfc.expected_members(counts)}
        configs.append((addresses, member, tfc.tf_config_json(addresses, member)))
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE],
        input="".join(c[2] + "\n" for c in configs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(CASES)
    for (addresses, member, _), answer in zip(configs, answers, strict=True):
        expected = tfc.training_cluster(addresses)
        assert "evaluator" not in answer["cluster"]
        assert answer["cluster"] == expected
        assert answer["num_tasks"] == {role: len(hosts) for role, hosts in expected.items()}
        assert answer["task_type"] == member.role
        assert answer["task_id"] == member.index
        # TFJob sets no rpc_layer
        assert answer["master"] == (None if member.role == "evaluator" else addresses[member])
