"""The embedded Mesos v1 master, split as Mesos' src/master is: `master` (subscription, failover,
heartbeats, the agent link), `allocator`, `validation` (validation.cpp), `launch` + `calls` (what each
scheduler Call does), `readonly` (readonly_handler.cpp: /master/state, /master/slaves, ...),
`operator` (the /api/v1 operator calls), `http` (the endpoints), `records`."""
