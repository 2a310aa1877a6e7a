"""A stress-test worker: allocates and releases GPUs at random for a while, and proves exclusivity with
a ledger of O_EXCL marker files (one per GPU held). Exit 3 on a double allocation.

Usage: python -m tests.isolator.allocator_worker STATE LEDGER NAME SECONDS SEED GPU...
"""

from __future__ import annotations

import os
import random
import sys
import time

from isolator.allocator import AllocationError, ExclusiveGpuAllocator, process_alive


def claim_marker(ledger: str, uuid: str, owner: str) -> None:
    path = os.path.join(ledger, uuid)
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as handle:
                    other = handle.read()
            except FileNotFoundError:
                continue  # released meanwhile
            pid = int(other.split(":")[1]) if other.count(":") == 2 else None
            if pid is not None and not process_alive(pid):
                os.unlink(path)  # left by a killed worker, whose allocation reconcile() freed
                continue
            print(f"DOUBLE ALLOCATION: {uuid} given to {owner} while {other!r} holds it", flush=True)
            sys.exit(3)
        with os.fdopen(fd, "w") as handle:
            handle.write(owner)
        return


def main(argv: list[str]) -> int:
    state, ledger, name, seconds, seed, *gpus = argv
    rng = random.Random(int(seed))
    allocator = ExclusiveGpuAllocator(state, gpus, lock_timeout=20)
    deadline = time.monotonic() + float(seconds)
    granted = refused = 0
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        owner = f"{name}:{os.getpid()}:{sequence}"
        try:
            uuids = allocator.allocate(rng.randint(1, 3), owner)
        except AllocationError:
            refused += 1
            if rng.random() < 0.2:
                allocator.reconcile()
            time.sleep(rng.random() * 0.005)
            continue
        granted += 1
        for uuid in uuids:
            claim_marker(ledger, uuid, owner)
        print(f"holding {owner} {','.join(uuids)}", flush=True)
        time.sleep(rng.random() * 0.01)
        for uuid in uuids:
            os.unlink(os.path.join(ledger, uuid))
        allocator.release(owner)
    print(f"done granted={granted} refused={refused}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
