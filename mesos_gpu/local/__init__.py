"""The embedded Mesos-compatible local cluster (master, agents) and a local ZooKeeper launcher."""
