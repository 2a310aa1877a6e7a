"""Tests of the scheduler settings reader (mesos_gpu.config)."""
