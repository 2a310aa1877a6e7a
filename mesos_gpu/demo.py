"""`mesos-gpu demo`: the distributed TensorFlow demo, end to end, on one machine.

Starts ZooKeeper, the embedded Mesos cluster (2 agents x 2 simulated GPUs), the scheduler and the
REST API (`mesos_gpu.standalone`); submits `examples/tf_distributed` through the REST API; shows live
progress; prints each worker's result (loss, accuracy, steps) read back through the API's log
endpoint; stops everything; exits 0 when the job SUCCEEDED, every chief and worker printed its
result and the ps was killed afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from mesos_gpu.client import ApiClient
from mesos_gpu.commands.submit import follow
from mesos_gpu.standalone import Standalone

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tf_distributed"
TRAINING_ROLES = ("chief", "worker")


def demo_job(example: Path = EXAMPLE, steps: int = 150, python: str = sys.executable) -> dict[str, Any]:
    """examples/tf_distributed/job.json, run on the local agents' hosts: no image, this interpreter
    (which has TensorFlow from the `tf` extra) running the example's train.py."""
    job: dict[str, Any] = json.loads((example / "job.json").read_text())
    job.pop("image", None)
    job["command"] = f"{shlex.quote(python)} {shlex.quote(str(example / 'train.py'))} --steps {steps}"
    return job


def worker_results(api: ApiClient, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The result line each chief or worker printed on stdout, read through the API's log endpoint."""
    results: dict[str, dict[str, Any]] = {}
    for task in job["tasks"]:
        if task["role"] not in TRAINING_ROLES:
            continue
        text = api.logs(job["id"], task=task["name"], stream="stdout", length=1 << 20).get("data", "")
        for line in text.splitlines():
            if line.startswith("{") and '"loss"' in line:
                results[task["name"]] = json.loads(line)
    return results


def settled(api: ApiClient, job: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """The job once the clean-up after its end is done (the ps and evaluator kills answered)."""
    deadline = time.monotonic() + timeout
    while any(task["active"] for task in job["tasks"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        job = api.job(job["id"])
    return job


def run_demo(out: TextIO, steps: int = 150, workdir: Path | None = None) -> int:
    """Run the demo, printing to `out`; returns the exit status (0 on success)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mesos-gpu-demo-") as scratch:
        print("Starting ZooKeeper, the local Mesos cluster (2 agents x 2 GPUs), the scheduler and the API...",
              file=out, flush=True)
        with Standalone(agents=2, gpus_per_agent=2, workdir=workdir or Path(scratch)) as local:
            api = ApiClient(local.api_url, timeout=30)
            print(f"API: {local.api_url}", file=out, flush=True)
            for agent in api.cluster().get("agents", []):
                print(f"  agent {agent.get('id')} on {agent.get('hostname')}: "
                      f"{agent.get('gpus', {}).get('total')} GPUs", file=out, flush=True)
            job, _ = api.submit(demo_job(steps=steps))
            print(f"Submitted {job['id']} (chief + worker + ps) through POST /v1/jobs", file=out, flush=True)
            final = settled(api, follow(api, job, interval=0.5, out=out))
            results = worker_results(api, final)
            print("\nResults:", file=out)
            for name, result in sorted(results.items()):
                print(f"  {name:<9} loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
                      f"steps {result['steps']}  ({result.get('workers')} workers)", file=out)
            ps = [t for t in final["tasks"] if t["role"] == "ps"]
            ps_killed = all(t["state"] == "TASK_KILLED" for t in ps) and bool(ps)
            states = ", ".join(f"{t['name']} {t['state']}" for t in ps)
            print(f"  ps tasks killed after success: {'yes' if ps_killed else 'NO'} ({states})", file=out)
            training = [t["name"] for t in final["tasks"] if t["role"] in TRAINING_ROLES]
            ok = final["state"] == "SUCCEEDED" and sorted(results) == sorted(training) and ps_killed
        print(f"\nDemo {'succeeded' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s; "
              "everything it started is stopped.", file=out, flush=True)
    return 0 if ok else 1


def _command(args: argparse.Namespace) -> int:
    # The parts log their own comings and goings; the demo's terminal shows progress and results.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return run_demo(sys.stdout, steps=args.steps)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the distributed TensorFlow demo on an embedded local cluster",
        description=__doc__.splitlines()[0].split(": ", 1)[1] if __doc__ else None,
    )
    parser.add_argument("--steps", type=int, default=150, help="training steps per worker (default 150)")
    parser.set_defaults(func=_command)
