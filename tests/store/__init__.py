"""Tests of the job store and leader election (memory and ZooKeeper)."""
