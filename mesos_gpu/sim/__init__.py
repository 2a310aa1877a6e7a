"""The trace-driven simulator (`mesos-gpu simulate`): replays a GPU cluster trace through the product's
own pure core (the placement pipeline, the gang planner, the share ledger, and the state machine on
simulated time), never through a copy of it. `trace` reads the trace; the experiments and reports are
the package's other modules."""
