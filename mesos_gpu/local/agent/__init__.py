"""The embedded Mesos agent, split as Mesos' src/slave is: `agent` (the agent's state and the master's
commands), `executors` (executor lifecycle), `task_launch` (command tasks and task groups),
`containerizer` + `runners` + `sandbox` + `gpus` (processes, Docker, sandboxes, GPU slots),
`command_executor`, `status_updates`, `executor_api` + `validation` (the executor HTTP API) and
`http` (the agent's own endpoints), `records`."""
