"""Tests of the embedded local Mesos cluster (master side and agents)."""
