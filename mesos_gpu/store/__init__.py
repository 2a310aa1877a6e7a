"""Job store and leader election: a protocol, an in-memory store and a ZooKeeper (kazoo) store."""
