"""Tests of distributed TensorFlow: TF_CONFIG, the ZooKeeper rendezvous, the launcher and the examples."""
