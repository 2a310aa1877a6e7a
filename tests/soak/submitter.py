"""The soak's client: a thread submitting jobs through the real API client as a patient user would.

It sends to one of the scheduler instances (another after a refused connection), follows 307s to the
leader (`ApiClient.request` does) and retries 503s and lost connections until `patience` runs out; a
job counts as acknowledged only once a 2xx names it. Half of the submits carry an Idempotency-Key (a
retry then cannot make a second job); the others do not (a retry after a lost answer may make one,
which is the client's choice: such jobs are never "acknowledged" twice, and must still end).

The mix (seeded): single-task jobs (with and without a GPU), 2-member gangs, `exit 1` jobs restarted
OnFailure with a short backoff (issue 20 item 1: a kill while one waits out its backoff), and GPU shares
(issue 17: 0.25 or 0.5 of a GPU, single tasks and 2-member gangs, at the default `capped` level) that
the cluster's share hosts run on its simulated GPUs.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.client import ApiClient, ApiError, ApiUnreachable

#: How long a gang's members wait for each other: well below the drains (90 s short, 300 s long), so a
#: member left alone (its partner's launch lost) frees its GPU and the gang is placed again, instead of
#: holding the GPU for the whole drain (the default is 300 s).
GANG_RENDEZVOUS_SECONDS = 45

FLAKY_RESTART = {"policy": "OnFailure", "backoff_limit": 2, "backoff_seconds": 2, "max_backoff_seconds": 2}


def job_of(kind: str, number: int, rng: random.Random) -> dict[str, Any]:
    """The job body of `kind` ("single", "gpu", "gang", "flaky", "share", "share_gang")."""
    name = f"soak-{kind.replace('_', '-')}-{number}"
    if kind == "gang":
        return {"name": name, "command": f"sleep {rng.uniform(0.5, 3):.1f}",
                "rendezvous_timeout_seconds": GANG_RENDEZVOUS_SECONDS,
                "roles": {"worker": {"instances": 2, "cpus": 0.1, "mem": 32, "gpus": 1}}}
    if kind == "share":
        return {"name": name, "command": f"sleep {rng.uniform(0.5, 4):.1f}", "cpus": 0.1, "mem": 32,
                "gpus": rng.choice((0.25, 0.5))}
    if kind == "share_gang":
        worker = {"instances": 2, "cpus": 0.1, "mem": 32, "gpus": rng.choice((0.25, 0.5))}
        return {"name": name, "command": f"sleep {rng.uniform(0.5, 3):.1f}", "roles": {"worker": worker},
                "rendezvous_timeout_seconds": GANG_RENDEZVOUS_SECONDS}
    if kind == "flaky":
        return {"name": name, "command": "sleep 0.3; exit 1", "cpus": 0.1, "mem": 32,
                "restart": FLAKY_RESTART}
    job: dict[str, Any] = {"name": name, "command": f"sleep {rng.uniform(0.5, 4):.1f}", "cpus": 0.1,
                           "mem": 32}
    if kind == "gpu":
        job["gpus"] = 1
    return job


@dataclass
class Submitter:
    """Submits until `stop()`; `acknowledged` maps job id -> kind; the counters tell how it went."""

    urls: list[str]
    seed: int
    interval: float = 0.5
    threads: int = 3
    patience: float = 120.0
    acknowledged: dict[str, str] = field(default_factory=dict)
    keyed: set[str] = field(default_factory=set)
    attempts: int = 0
    given_up: int = 0
    answers: dict[int, int] = field(default_factory=dict)  # HTTP status -> count (errors, redirects)
    unreachable: int = 0
    unexpected: list[str] = field(default_factory=list)  # answers no real client would retry
    # Jobs submitted without a key whose every failed try was a 503 or a refused connection (never a
    # lost answer): name -> the id acknowledged at last. Exactly one job of that name may exist.
    unambiguous: dict[str, str | None] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    KINDS = ("single", "gpu", "gang", "flaky", "share", "share_gang")
    WEIGHTS = (3, 2, 2, 1, 3, 2)

    def start(self) -> Submitter:
        for index in range(self.threads):
            thread = threading.Thread(target=self._run, args=(index,), name=f"soak-submitter-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.patience + 30)

    def _run(self, index: int) -> None:
        """One client: a job, then `interval` of calm, and again (each thread its own numbers and seed)."""
        rng = random.Random(self.seed * 31 + index)
        number = index
        while not self._stop.is_set():
            kind = rng.choices(self.KINDS, self.WEIGHTS)[0]
            keyed = rng.random() < 0.5
            job_id = self.submit(job_of(kind, number, rng), str(uuid.uuid4()) if keyed else None, rng)
            number += self.threads
            if job_id is not None:
                self.note(job_id, kind, keyed=keyed)
            self._stop.wait(self.interval)

    def submit(self, job: dict[str, Any], key: str | None, rng: random.Random) -> str | None:
        """One job, retried until a 2xx (its id) or `patience` runs out (None)."""
        deadline = time.monotonic() + self.patience
        headers = {"Idempotency-Key": key} if key else {}
        start = rng.randrange(len(self.urls))
        tries = 0
        ambiguous = False
        while time.monotonic() < deadline:
            url = self.urls[(start + tries) % len(self.urls)]
            tries += 1
            with self._lock:
                self.attempts += 1
            try:
                _, _, payload = ApiClient(url, timeout=15).request("POST", "/v1/jobs", job, headers)
                if not key and not ambiguous:
                    with self._lock:
                        self.unambiguous[job["name"]] = str(payload["id"])
                return str(payload["id"])
            except ApiUnreachable as exc:
                ambiguous = ambiguous or "refused" not in str(exc)
                with self._lock:
                    self.unreachable += 1
            except ApiError as exc:
                with self._lock:
                    self.answers[exc.status] = self.answers.get(exc.status, 0) + 1
                if exc.status != 503:
                    with self._lock:
                        self.unexpected.append(f"submit of {job['name']} answered {exc.status}: {exc}")
                    return None
            time.sleep(min(0.2 * tries, 2.0))
        with self._lock:
            self.given_up += 1
        return None

    def note(self, job_id: str, kind: str, *, keyed: bool) -> None:
        """Count a job acknowledged to another user of `submit` (the faults' own jobs)."""
        with self._lock:
            self.acknowledged[job_id] = kind
            if keyed:
                self.keyed.add(job_id)

    def jobs(self) -> dict[str, str]:
        with self._lock:
            return dict(self.acknowledged)
