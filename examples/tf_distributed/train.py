"""Train a small classifier on scikit-learn's bundled digits with tf.distribute, from TF_CONFIG.

A stock TensorFlow script: it knows nothing of Mesos. The launcher gives every task a TF_CONFIG in
Kubeflow TFJob's format; MultiWorkerMirroredStrategy reads it (chief and workers all train, with
synchronous all-reduce). Without TF_CONFIG it trains alone. Each task prints one JSON line:
{"role": "worker", "index": 0, "loss": 0.12, "accuracy": 0.96, "steps": 200, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps (every worker runs all)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per worker per step")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits shipped inside scikit-learn (no download): 80 % train, 20 % test."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(len(x) * 0.8)
    train, test = order[:split], order[split:]
    return x[train], y[train], x[test], y[test]


def task_of(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) or "worker"
    task_id = getattr(resolver, "task_id", None) or 0
    return str(task_type), int(task_id)


def serve(role: str, index: int) -> int:
    """A ps (or evaluator) task: serve the cluster's gRPC endpoint until killed.

    All-reduce training does not use it; the job's success policy kills it once the chief is done.
    """
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=role, task_index=index, start=True)
    print(json.dumps({"role": role, "index": index, "serving": server.target}), flush=True)
    server.join()
    return 0


def all_reduce_resolver(tf_config: dict) -> tf.distribute.cluster_resolver.ClusterResolver | None:
    """The chief and workers of TF_CONFIG, the tasks that all-reduce; None without TF_CONFIG.

    A ps or evaluator in the cluster takes no part in all-reduce and must be left out: TensorFlow's
    coordination service would otherwise wait for it to join the collective group, forever.
    """
    if not tf_config:
        return None
    cluster = {role: hosts for role, hosts in tf_config["cluster"].items() if role in ("chief", "worker")}
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster),
        task_type=tf_config["task"]["type"],
        task_id=int(tf_config["task"]["index"]),
        rpc_layer="grpc",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)  # set but empty would make TensorFlow fail to parse it
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    role = tf_config.get("task", {}).get("type", "worker")
    if role in ("ps", "evaluator"):
        return serve(role, int(tf_config["task"].get("index", 0)))
    tf.keras.utils.set_random_seed(args.seed)
    started = time.monotonic()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=all_reduce_resolver(tf_config))
    task_type, task_id = task_of(strategy)
    workers = strategy.num_replicas_in_sync
    global_batch = args.batch_size * workers

    x_train, y_train, x_test, y_test = load_data(args.seed)
    dataset = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=args.seed)
        .repeat()
        .batch(global_batch, drop_remainder=True)
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    with strategy.scope():
        layers = [tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)]
        model = tf.keras.Sequential([tf.keras.Input(shape=(64,)), *layers])
        optimizer = tf.keras.optimizers.Adam(learning_rate=args.learning_rate)

    @tf.function
    def train_step(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        def step(inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            features, labels = inputs
            with tf.GradientTape() as tape:
                logits = model(features, training=True)
                per_example = tf.keras.losses.sparse_categorical_crossentropy(
                    labels, logits, from_logits=True
                )
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            return loss

        per_replica = strategy.run(step, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    losses = [float(train_step(next(iterator))) for _ in range(args.steps)]

    # The weights are identical on every worker now: evaluate locally, no collective needed.
    logits = model(x_test, training=False)
    accuracy = float(np.mean(np.argmax(logits.numpy(), axis=1) == y_test))
    result = {
        "role": task_type,
        "index": task_id,
        "loss": round(float(np.mean(losses[-10:])), 4),
        "accuracy": round(accuracy, 4),
        "steps": len(losses),
        "workers": workers,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
