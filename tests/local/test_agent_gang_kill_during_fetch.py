"""Issue 20 item 3 through the local master, as the fault run met it: a framework launches a 2-member
gang (one one-GPU command task per agent, each fetching its launcher first) and kills both members as
soon as they are STAGING, 10 times. Each member must end TASK_KILLED and its GPUs must come back to the
master (offered again), never stay allocated to a task stuck in STAGING."""

from __future__ import annotations

from typing import Any

from tests.local.agent_helpers import GatedFileServer
from tests.local.conftest import RecordingScheduler, command_task, scalar
from tests.waiting import wait_until

ROUNDS = 10


def fresh_offers(recorder: RecordingScheduler, spent: set[str], agents: int) -> list[Any]:
    """One offer with a GPU from each agent, not used or rescinded yet."""
    by_agent: dict[str, Any] = {}

    def complete(offer: Any) -> bool:
        gone = spent | {o["value"] for o in recorder.payloads("rescinded")}
        if scalar(offer, "gpus") >= 1 and offer["id"]["value"] not in gone:
            by_agent.setdefault(offer["agent_id"]["value"], offer)
        return len(by_agent) == agents

    recorder.wait_for("offer", complete)
    spent.update(o["id"]["value"] for o in by_agent.values())
    return list(by_agent.values())


def used_gpus(cluster: Any) -> list[float]:
    return [s["used_resources"].get("gpus", 0) for s in cluster.state()["slaves"]]


def test_a_gang_killed_while_staging_ends_killed_and_gives_its_gpus_back(cluster, driver_factory) -> None:
    driver, recorder = driver_factory(cluster.master_address)
    spent: set[str] = set()
    with GatedFileServer() as server:
        for round_ in range(ROUNDS):
            offers = fresh_offers(recorder, spent, agents=2)
            members = [f"gang{round_}-{i}" for i in range(len(offers))]
            for member, offer in zip(members, offers, strict=True):
                task = command_task(offer, member, cmd="sleep 30", gpus=1)
                task["command"]["uris"] = [{"value": server.url(member), "extract": False}]
                driver.launchTasks(offer["id"], [task], {"refuse_seconds": 0.0})
            for member in members:  # DELETE as soon as the job reads STAGING
                driver.killTask({"value": member})
            for member in members:
                killed = recorder.wait_state(member, "TASK_KILLED", timeout=5)
                assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
                assert recorder.updates_for(member) == ["TASK_KILLED"]
            wait_until(lambda: used_gpus(cluster) == [0, 0], 5, "the gang's GPUs back on the master")
            for member in members:
                server.release(member)
