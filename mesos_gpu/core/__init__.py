"""The pure core: job model, validation, policies, resources, placement, the state machine, TaskInfo
and TF_CONFIG building, and the Mesos wire helpers. Standard library only; no threads, clock or I/O."""
