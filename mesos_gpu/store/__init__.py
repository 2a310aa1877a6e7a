"""Job store and leader election: the protocol (`base`), an in-memory store (`memory`), and the ZooKeeper
store on kazoo, one recipe per module (`zkclient`: client and retry policies, `zk`: the store,
`zkelection`: the election); `election.Leadership` is the bookkeeping both elections share."""
