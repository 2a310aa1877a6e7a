"""A seeded scenario through `SchedulerState` with the real planner, whose commands are kept as a reference.

Jobs of every shape the TaskInfo and record builders handle (single tasks, TF gangs, docker, images, env,
uris, constraints, priorities, tenants, GPU shares), offers with unreserved, reserved (both formats) and
allocation-labelled resources, and several cycles with failures, restarts, kills and relaunches. The
commands of every event are written as JSON text in order (`json.dumps`, keys in insertion order), so the
text is the bytes the runtime would act on. `tests/scheduler/test_cycle_reference.py` compares it with
the digest taken before the offer cycle was made faster (`python -m tests.scheduler.cycle_scenario`
prints the digest; `--write PATH` writes the text itself, to compare two versions by hand).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from typing import Any

from mesos_gpu.core.commands import Accept, Command
from mesos_gpu.core.events import (
    JobSubmitted,
    KillRequested,
    OffersReceived,
    StatusReceived,
    Subscribed,
    Tick,
)
from mesos_gpu.core.records import new_job_record
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.sharing import ATTR_GPU_MEMORY
from mesos_gpu.core.state import SchedulerState
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.core.validation import validate_job

SETTINGS = LaunchSettings(zk_url="zk://127.0.0.1:2181/mesos-gpu/ref", launcher_uri="http://s:1/launcher.pyz",
                          role="*", kill_grace_seconds=7.5)
RESERVED_REFINED = {"reservations": [{"type": "DYNAMIC", "role": "tf", "principal": "ops"}]}
RESERVED_OLD = {"role": "tf", "reservation": {"principal": "ops"}}


def _job(rng: random.Random, number: int) -> dict[str, Any]:
    kind = rng.choice(["single", "single", "single", "tf", "share", "docker"])
    command = rng.choice(["python train.py", "sleep 5; echo ok"])
    data: dict[str, Any] = {"name": f"job{number}", "command": command}
    if rng.random() < 0.3:
        data["env"] = {f"K{i}": f"v{rng.randrange(9)}" for i in range(rng.randrange(1, 4))}
    if rng.random() < 0.3:
        data["image"] = rng.choice(["tf:latest", "pytorch:2"])
    if rng.random() < 0.2:
        data["uris"] = [rng.choice(["http://x/data.tgz", {"value": "http://x/run.sh", "executable": True,
                                                          "extract": False}])]
    if rng.random() < 0.2:
        data["labels"] = {"team": rng.choice(["a", "b"])}
    data["priority"] = rng.choice([0, 0, 1, 5])
    data["tenant"] = rng.choice(["default", "t1"])
    if rng.random() < 0.5:
        data["restart"] = {"policy": "OnFailure", "backoff_limit": 3, "backoff_seconds": 1}
    if kind == "tf":
        data["roles"] = {
            "chief": {"instances": 1, "cpus": 1, "mem": 512, "gpus": rng.choice([0, 1])},
            "worker": {"instances": rng.randrange(1, 4), "cpus": 0.5, "mem": 256,
                       "gpus": rng.choice([0, 1, 2])},
            "ps": {"instances": rng.randrange(1, 3), "cpus": 0.5, "mem": 128,
                   "env": {"PS": "1"}} if rng.random() < 0.5 else {"instances": 1, "cpus": 0.25, "mem": 64},
        }
        if rng.random() < 0.3:
            data["containerizer"] = "docker"
            data["image"] = "tf:latest"
    elif kind == "share":
        data.update(cpus=0.5, mem=256, gpus=rng.choice([0.25, 0.5, {"min": 0.25, "max": 0.5}]),
                    isolation=rng.choice(["capped", "shared"]))
    else:
        data.update(cpus=rng.choice([0.1, 0.5, 1, 2]), mem=rng.choice([64, 512, 2048]),
                    gpus=rng.choice([0, 0, 1, 2]), disk=rng.choice([0, 0, 100]))
        if kind == "docker":
            data["containerizer"] = "docker"
            data["image"] = "cuda:12"
        if rng.random() < 0.2:
            data["constraints"] = [["gpu_model", "LIKE", "V100|A100"]]
    return data


def _offer(rng: random.Random, agent: int, number: int) -> dict[str, Any]:
    kind = rng.choice(["plain", "plain", "refined", "old", "allocated"])
    gpus = rng.choice([0, 0, 2, 4, 8])   # an agent without GPUs has no GPU model: CPU work goes there
    labels: dict[str, Any] = {"role": "*"}
    if kind == "allocated":
        labels = {"role": "*", "allocation_info": {"role": "*"}}
    resources: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": rng.choice([4, 8, 16.5])}, **labels},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": rng.choice([4096, 16384])}, **labels},
        {"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}, **labels},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 10000}, **labels},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31009}]}, **labels},
    ]
    if kind in ("refined", "old"):
        reserved = RESERVED_REFINED if kind == "refined" else RESERVED_OLD
        resources = [{**{k: v for k, v in entry.items() if k != "role"}, **reserved} for entry in resources]
    attributes: list[dict[str, Any]] = []
    if gpus:
        model = rng.choice(["V100", "A100"])
        attributes.append({"name": "gpu_model", "type": "TEXT", "text": {"value": model}})
    if gpus and rng.random() < 0.5:
        attributes.append({"name": ATTR_GPU_MEMORY, "type": "SCALAR", "scalar": {"value": 16000}})
    return {"id": {"value": f"O{number}"}, "framework_id": {"value": "F"}, "agent_id": {"value": f"S{agent}"},
            "hostname": f"host-{agent}", "resources": resources, "attributes": attributes}


def _status(task_id: str, state: str, agent: str | None, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "source": "SOURCE_EXECUTOR",
                           "uuid": f"u-{task_id}-{state}"}
    if agent:
        out["agent_id"] = {"value": agent}
    if message:
        out["message"] = message
    return out


def _text(command: Command) -> str:
    return json.dumps([type(command).__name__, dataclasses.asdict(command)])


def events(seed: int = 11, jobs: int = 160, agents: int = 60) -> Iterator[tuple[SchedulerState, Any]]:
    """(state, event) pairs to feed in order; statuses are made from what the previous events launched."""
    rng = random.Random(seed)
    state = SchedulerState(make_planner(), settings=SETTINGS)
    now = 0.0
    yield state, Subscribed("F", now)
    for number in range(jobs):
        now += 0.5
        spec = validate_job(_job(rng, number))
        yield state, JobSubmitted(new_job_record(f"job-{number}", spec, now), now)
    offer_number = 0
    for cycle in range(6):
        now += 3.0
        chosen = rng.sample(range(agents), agents // 2)
        offers = []
        for agent in chosen:
            offers.append(_offer(rng, agent, offer_number))
            offer_number += 1
        yield state, OffersReceived(tuple(offers), now)
        for task_id, (job_id, key) in sorted(state.task_index.items()):
            now += 0.01
            agent = state.jobs[job_id].members[key].agent_id
            roll = rng.random()
            if roll < 0.4:
                yield state, StatusReceived(_status(task_id, "TASK_RUNNING", agent), now)
            elif roll < 0.55:
                yield state, StatusReceived(_status(task_id, "TASK_FAILED", agent, "exit status 3"), now, 0.3)
            elif roll < 0.7:
                yield state, StatusReceived(_status(task_id, "TASK_FINISHED", agent), now)
        if cycle == 2:
            for number in range(0, jobs, 17):
                yield state, KillRequested(f"job-{number}", now)
        now += 2.0
        yield state, Tick(now)


def commands_text(seed: int = 11) -> str:
    """Every command of the scenario, one JSON line each, events separated by blank lines."""
    lines: list[str] = []
    launched = 0
    for state, event in events(seed):
        commands = state.handle(event)
        launched += sum(len(c.task_infos) for c in commands if isinstance(c, Accept))
        lines.extend(_text(command) for command in commands)
        lines.append("")
    if launched < 80:
        raise AssertionError(f"the scenario launched only {launched} tasks (80 expected)")
    return "\n".join(lines)


def digest(seed: int = 11) -> str:
    return hashlib.sha256(commands_text(seed).encode()).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--write":
        with open(sys.argv[2], "w") as handle:
            handle.write(commands_text())
    print(digest())
