"""Agent side of mesos-gpu: NVML discovery, agent configuration and doctor, exclusive GPU
allocation, and the nvidia-docker executor. Deployed on GPU agents, apart from the scheduler."""

__version__ = "0.1.0"
