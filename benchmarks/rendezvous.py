"""Rendezvous latency: from the last member registering to every member having its TF_CONFIG.

For 2, 8 and 32 members against a ZooKeeper server this script starts. Each member is its own process
with its own kazoo client (its own ZooKeeper session), as TF tasks are. Target: at most 100 ms at 32.
`--in-process` runs the members as threads of this one process instead (32 kazoo clients, about 100
threads under one GIL): a harsher shape no deployment has, kept for comparison.
Run: `.venv/bin/python benchmarks/rendezvous.py [--rounds 7] [--sizes 2,8,32] [--in-process] [--strict]`.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection

from kazoo.client import KazooClient

from mesos_gpu.core import tfconfig as tfc
from mesos_gpu.local.zookeeper import ZooKeeperServer
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


def member_process(conn: Connection, hosts: str, index: int) -> None:
    """One member in its own process: on ("join", job, counts, last) it registers and waits; it answers
    ("ready",) once registered (not last) and ("done", start, registered, end) in perf_counter times
    (CLOCK_MONOTONIC: comparable between processes)."""
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    conn.send(("started",))
    current: Rendezvous | None = None
    try:
        while (message := conn.recv())[0] != "stop":
            if message[0] == "leave":
                if current is not None:
                    current.leave()
                    current = None
                conn.send(("left",))
                continue
            _, job_id, counts, last = message
            member = tfc.expected_members(counts)[index]
            current = Rendezvous(client, job_id, member, f"10.0.0.{index % 250}:{31000 + index}", counts,
                                 chroot="/bench")
            started = time.perf_counter()
            current.register()
            registered = time.perf_counter()
            if not last:
                conn.send(("ready",))
            addresses = current.wait(30)
            tfc.tf_config_json(addresses, current.member)
            conn.send(("done", started, registered, time.perf_counter()))
    finally:
        client.stop()
        client.close()


def processes_rounds(hosts: str, size: int, rounds: int) -> list[tuple[float, float]]:
    """`rounds` rounds (after a warm-up) with one process per member; see `one_round` for the figures."""
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for index in range(size):
        parent, child = context.Pipe()
        process = context.Process(target=member_process, args=(child, hosts, index), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        for pipe in pipes:
            if not pipe.poll(60) or pipe.recv() != ("started",):
                raise RuntimeError("a member process did not start")
        counts = {"chief": 1, "worker": size - 1}
        results = []
        for number in range(rounds + 1):
            job_id = f"job-{size}-{number}"
            for pipe in pipes[:-1]:
                pipe.send(("join", job_id, counts, False))
            for pipe in pipes[:-1]:
                if pipe.recv() != ("ready",):
                    raise RuntimeError("a member could not register")
            time.sleep(0.3)  # let every waiter set its watches and block
            pipes[-1].send(("join", job_id, counts, True))
            done = [pipe.recv() for pipe in pipes]
            if any(answer[0] != "done" for answer in done):
                raise RuntimeError(f"a member failed: {done}")
            _, started, registered, _ = done[-1]
            finished = max(answer[3] for answer in done)
            if number:  # the first round warms up
                results.append(((finished - started) * 1000, (finished - registered) * 1000))
            for pipe in pipes:
                pipe.send(("leave",))
            for pipe in pipes:
                pipe.recv()
        return results
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def threads_rounds(hosts: str, size: int, rounds: int) -> list[tuple[float, float]]:
    clients = [KazooClient(hosts=hosts, timeout=10.0) for _ in range(size)]
    for client in clients:
        client.start(timeout=30)
    try:
        one_round(clients, f"warmup-{size}")
        return [one_round(clients, f"job-{size}-{r}") for r in range(rounds)]
    finally:
        for client in clients:
            client.stop()
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,8,32")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--in-process", action="store_true", help="members as threads of this process")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    shape = "threads of one process" if args.in_process else "one process per member"
    print(f"rendezvous latency (ms), {args.rounds} rounds each, {shape}; "
          f"last member registers -> all have TF_CONFIG")
    results = {}
    with ZooKeeperServer() as zk:
        for size in sizes:
            measure = threads_rounds if args.in_process else processes_rounds
            rounds = measure(zk.hosts, size, args.rounds)
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
