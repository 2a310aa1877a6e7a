"""Issue 20 item 1, end to end: the leader suppresses offers while its only job waits out a restart
backoff and is then killed with SIGKILL; the standby that takes over must get offers again and run the
job's next attempt (before the fix it stayed RESTARTING forever: the master kept the suppression across
the failover SUBSCRIBE and the new leader never revived)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesos_gpu.local.cluster import LocalCluster
from mesos_gpu.store.zk import ZooKeeperStore
from tests.integration.conftest import wait_for
from tests.integration.test_failover import Scheduler, ha_store  # noqa: F401  (ha_store: a fixture)

pytestmark = [pytest.mark.zookeeper, pytest.mark.slow]

FLAKY = {
    "name": "flaky",
    "command": "exit 1",
    "cpus": 0.1,
    "mem": 32,
    "restart": {"policy": "OnFailure", "backoff_limit": 20, "backoff_seconds": 5, "max_backoff_seconds": 5},
}


def suppressed(cluster: LocalCluster) -> bool:
    """The scheduler's framework is subscribed and suppressed (`active` false in /master/state)."""
    frameworks = cluster.state()["frameworks"]
    return bool(frameworks) and all(f["connected"] and not f["active"] for f in frameworks)


def test_a_new_leader_runs_a_job_its_killed_predecessor_left_restarting_while_suppressed(
    tmp_path: Path,
    zk_hosts: str,
    zk_chroot: str,
    launcher_uri: str,
    ha_store: ZooKeeperStore,  # noqa: F811
) -> None:
    zk_url = f"zk://{zk_hosts}{zk_chroot}"
    with LocalCluster(
        agents=1,
        gpus_per_agent=1,
        workdir=tmp_path / "cluster",
        heartbeat_interval=1.0,
        status_update_retry=1.0,
        allocation_interval=0.2,
    ) as cluster:
        leader = Scheduler(cluster.master_address, zk_url, "a:1", launcher_uri, tmp_path / "a.log", job=FLAKY)
        standby: Scheduler | None = None
        try:
            leader.wait_line("LEADER", 30)
            job_id = leader.wait_line("JOB ", 30)[0].split()[1]
            standby = Scheduler(cluster.master_address, zk_url, "b:2", launcher_uri, tmp_path / "b.log")
            wait_for(lambda: len(ha_store.leader_election().contenders()) == 2, 15, "no standby")
            # The job failed and waits out its backoff; its leader has nothing to place and suppresses.
            wait_for(
                lambda: ha_store.get(job_id).data["state"] == "RESTARTING" and suppressed(cluster),
                20,
                "the leader never suppressed while the job was RESTARTING",
            )
            attempt = ha_store.get(job_id).data["attempt"]
            leader.kill9()
            standby.wait_line("LEADER", 20)
            again = wait_for(
                lambda: (d := ha_store.get(job_id).data)["attempt"] > attempt and d,
                30,
                "the new leader never ran the job again",
            )
            assert again["state"] in ("STAGING", "RUNNING", "RESTARTING"), again
        finally:
            leader.close()
            if standby is not None:
                standby.close()
