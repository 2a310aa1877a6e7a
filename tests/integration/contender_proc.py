"""A scheduler runtime in its own process with a short ZooKeeper session, steered through stdin (for
tests that pause it with SIGSTOP).

Usage: python -m tests.integration.contender_proc MASTER ZK_URL IDENTIFIER LAUNCHER_URI SESSION_TIMEOUT
It prints `LEADER` when elected and connected, `LOST` when it stops leading afterwards, and for every
stdin line `SUBMIT <job json>` prints `JOB <id>` or `REFUSED <error>`. It runs until killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.runtime import SchedulerRuntime
from tests.integration.scheduler_proc import build_runtime


def serve_submits(runtime: SchedulerRuntime) -> None:
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command != "SUBMIT":
            continue
        try:
            view, _ = runtime.submit(validate_job(json.loads(argument)))
        except Exception as exc:  # report, keep serving
            print(f"REFUSED {type(exc).__name__}: {exc}", flush=True)
        else:
            print(f"JOB {view['id']}", flush=True)


def main() -> None:
    master, zk_url, identifier, launcher_uri, session_timeout = sys.argv[1:6]
    runtime = build_runtime(master, zk_url, identifier, launcher_uri, session_timeout=float(session_timeout))
    runtime.start()
    threading.Thread(target=serve_submits, args=(runtime,), daemon=True).start()
    led = False
    while True:
        if not led and runtime.is_leader and runtime.mesos_connected:
            print("LEADER", flush=True)
            led = True
        elif led and not runtime.is_leader:
            print("LOST", flush=True)
            led = False
        time.sleep(0.02)


if __name__ == "__main__":
    main()
