"""Rendezvous latency: from the last member registering to every member having its TF_CONFIG.

For 2, 8 and 32 members (threads in one process, each with its own kazoo client, i.e. its own
ZooKeeper session) against a ZooKeeper server this script starts. Target: at most 100 ms at 32.
Run: `.venv/bin/python benchmarks/rendezvous.py [--rounds 7] [--sizes 2,8,32] [--strict]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from kazoo.client import KazooClient

from mesos_gpu.local.zookeeper import ZooKeeperServer
from mesos_gpu.tf import cluster as tfc
from mesos_gpu.tf.rendezvous import Rendezvous

TARGET_MS_AT_32 = 100.0


def one_round(clients: list[KazooClient], job_id: str) -> tuple[float, float]:
    """(ms from the last member starting to register, ms from its node existing) to the last TF_CONFIG."""
    size = len(clients)
    counts = {"chief": 1, "worker": size - 1}
    members = tfc.expected_members(counts)
    done_at: list[float] = [0.0] * size
    errors: list[BaseException] = []
    waiting = threading.Barrier(size)  # the first size-1 threads plus the main thread

    def member_thread(i: int, rendezvous: Rendezvous, signal_waiting: bool) -> None:
        try:
            if signal_waiting:
                waiting.wait(30)
            addresses = rendezvous.wait(30)
            tfc.tf_config_json(addresses, rendezvous.member)
            done_at[i] = time.perf_counter()
        except BaseException as exc:
            errors.append(exc)

    rendezvous = [
        Rendezvous(client, job_id, member, f"10.0.0.{i % 250}:{31000 + i}", counts, chroot="/bench")
        for i, (client, member) in enumerate(zip(clients, members, strict=True))
    ]
    threads = []
    for i, r in enumerate(rendezvous[:-1]):
        r.register()
        thread = threading.Thread(target=member_thread, args=(i, r, True), daemon=True)
        thread.start()
        threads.append(thread)
    waiting.wait(30)
    time.sleep(0.3)  # let every waiter set its watches and block
    last = rendezvous[-1]
    started = time.perf_counter()
    last.register()
    registered = time.perf_counter()
    member_thread(size - 1, last, False)
    for thread in threads:
        thread.join(30)
    if errors:
        raise RuntimeError(f"a member failed: {errors[0]!r}")
    finished = max(done_at)
    for r in rendezvous:
        r.leave()
    return (finished - started) * 1000, (finished - registered) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,8,32")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"rendezvous latency (ms), {args.rounds} rounds each; last member registers -> all have TF_CONFIG")
    results = {}
    with ZooKeeperServer() as zk:
        for size in sizes:
            clients = [KazooClient(hosts=zk.hosts, timeout=10.0) for _ in range(size)]
            for client in clients:
                client.start(timeout=30)
            try:
                one_round(clients, f"warmup-{size}")
                rounds = [one_round(clients, f"job-{size}-{r}") for r in range(args.rounds)]
            finally:
                for client in clients:
                    client.stop()
                    client.close()
            total = [r[0] for r in rounds]
            after_node = [r[1] for r in rounds]
            results[size] = statistics.median(total)
            print(
                f"  {size:3d} members: median {statistics.median(total):7.1f}  max {max(total):7.1f}"
                f"   (from its node existing: median {statistics.median(after_node):6.1f})"
            )
    if 32 in results:
        ratio = results[32] / TARGET_MS_AT_32
        verdict = "meets" if ratio <= 1 else "MISSES"
        print(
            f"target <= {TARGET_MS_AT_32:.0f} ms at 32 members: median {results[32]:.1f} ms, "
            f"ratio {ratio:.2f} of target ({verdict})"
        )
        return 1 if args.strict and ratio > 1 else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
