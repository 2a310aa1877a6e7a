"""Persist benchmark: storing the job records of one deep-queue offer cycle in a real ZooKeeper.

The OFFERS event of `benchmarks/placement.py` (1,000 offers of the openb trace against 10,000 pending
trace jobs) launches about 4,500 jobs through the scheduler's state machine; each launched job's record
must be stored before any task is launched (persist before launch). This benchmark takes those records
and stores them in a ZooKeeper started here (Debian's `zookeeper`), fenced by a leader election as the
scheduler's writes are: one conditional write per job (`compare_and_set`, as every cycle did before)
against the batched writes the scheduler makes now (`compare_and_set_many`: one transaction per packet's
worth of records). Target: the whole cycle's records stored within 1 s (the worker holds every other
Mesos event meanwhile). Prints both times and the ratio.
Run: `python benchmarks/persist.py [--traces PATH] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.placement import (  # noqa: E402
    DEFAULT_TRACES,
    load_agents,
    offers_event,
    trace_specs,
    waiting_state,
)
from mesos_gpu.core.state import OffersReceived, Persist  # noqa: E402
from mesos_gpu.local.zookeeper import ZooKeeperServer  # noqa: E402
from mesos_gpu.store.base import encode_record  # noqa: E402
from mesos_gpu.store.zk import ZooKeeperStore, connect  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

TARGET_S = 1.0


def cycle_records(traces: Path, offers: int, pending: int) -> list[tuple[str, dict[str, Any]]]:
    """The (job id, record) of every Persist of the placement benchmark's OFFERS event."""
    agents = load_agents(traces / "alibaba_openb_2023_nodes.csv")
    specs = trace_specs(traces / "alibaba_openb_2023.csv", pending)
    event = OffersReceived(offers_event(agents, offers, 7), float(pending + 1))
    commands = waiting_state(specs).handle(event)
    return [(command.job_id, command.record) for command in commands if isinstance(command, Persist)]


def leading_store(hosts: str, name: str) -> ZooKeeperStore:
    store = connect(f"zk://{hosts}/bench", name)
    election = store.leader_election()
    store.fence(election)
    election.campaign("bench:1", lambda: None, lambda reason: None)
    wait_until(lambda: election.is_leader, 15, "leadership")
    return store


def one_round(store: ZooKeeperStore, records: list[tuple[str, dict[str, Any]]], batched: bool) -> float:
    """Seconds to store `records` over their version-0 nodes (created first, not timed)."""
    store.create_many([(job_id, {"id": job_id, "state": "PENDING"}) for job_id, _ in records])
    started = time.perf_counter()
    if batched:
        store.compare_and_set_many([(job_id, record, 0) for job_id, record in records])
    else:
        for job_id, record in records:
            store.compare_and_set(job_id, record, 0)
    took = time.perf_counter() - started
    for job_id, _ in records:
        store.delete(job_id, None)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="folder with the trace CSVs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=10_000)
    args = parser.parse_args(argv)
    records = cycle_records(args.traces, args.offers, args.pending)
    size = sum(len(encode_record(record)) for _, record in records) / max(1, len(records))
    print(f"one OFFERS event ({args.offers} offers x {args.pending} pending): {len(records)} records to "
          f"store, about {size:,.0f} bytes each")
    with ZooKeeperServer() as server:
        store = leading_store(server.hosts, "persist")
        try:
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):    # alternating, so both see the same machine
                for batched in (False, True):
                    times[batched].append(one_round(store, records, batched))
        finally:
            store.close()
    one, many = statistics.median(times[False]), statistics.median(times[True])
    print(f"  one write per job (compare_and_set)       {one * 1e3:>8.0f} ms median "
          f"(best {min(times[False]) * 1e3:.0f})   {one / len(records) * 1e3:.2f} ms per job")
    print(f"  batched (compare_and_set_many)           {many * 1e3:>8.0f} ms median "
          f"(best {min(times[True]) * 1e3:.0f})   target <= {TARGET_S * 1e3:.0f} ms   "
          f"ratio {TARGET_S / many:.2f}   ({one / many:.0f}x faster than one write per job)")
    print("ratio = target / measured: >= 1 meets the target.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
