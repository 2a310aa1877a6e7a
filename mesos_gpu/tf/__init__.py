"""Distributed TensorFlow: TF_CONFIG building (pure) and the in-task launcher (ZooKeeper barrier)."""
