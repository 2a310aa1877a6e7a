"""A tiny ParameterServerStrategy job for the end-to-end tests (tests/integration/test_tf_ps_evaluator.py).

`python ps_train.py OUT_DIR`, with TF_CONFIG set by the launcher: ps and worker tasks run a
`tf.distribute.Server`; the evaluator writes the TF_CONFIG it got and waits (as an evaluator polling
checkpoints would) until it is killed; the chief trains 3 steps through a `ClusterCoordinator` and
writes what it did to OUT_DIR/chief.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import tensorflow as tf


def main(out: Path) -> int:
    config = json.loads(os.environ["TF_CONFIG"])
    role = config["task"]["type"]
    (out / f"{role}.tf_config.json").write_text(json.dumps(config))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if role in ("ps", "worker"):
        server = tf.distribute.Server(
            resolver.cluster_spec(), job_name=role, task_index=resolver.task_id, protocol="grpc", start=True
        )
        server.join()
        return 0
    if role == "evaluator":
        while True:
            time.sleep(1)
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    with strategy.scope():
        total = tf.Variable(0.0)

    @tf.function
    def step() -> tf.Tensor:
        total.assign_add(1.0)
        return total.read_value()

    for _ in range(3):
        coordinator.schedule(step)
    coordinator.join()
    (out / "chief.json").write_text(json.dumps({"steps": int(total.numpy())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
