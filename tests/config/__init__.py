"""Tests of the scheduler settings reader (mesos_gpu.core.config)."""
