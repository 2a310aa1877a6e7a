"""The agents the master knows, with their whole capacity: what tells "can never fit" from "waits".

Offers show only what is free now, so a job asking for 16 GPUs where every agent has 8 would wait for
ever saying "0/5 agents fit: 5 insufficient gpus". `AgentCatalog` reads the master's `GET
/master/slaves` every `interval` seconds on a thread; `make_planner(catalog=agents.current)` places
every waiting job on that catalog too, and one that fits nowhere says so: "can never fit: 0/5 agents
fit: 5 insufficient gpus", in its persisted message; it fails once that has held for the state
machine's `never_fits_after_seconds` (an agent that was away may come back meanwhile).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from mesos_gpu.core.placement.offers import AgentSlot, catalog_from_master_state
from mesos_gpu.core.wire import MasterUrl

log = logging.getLogger(__name__)

Fetch = Callable[[str], Mapping[str, Any]]


class AgentCatalog:
    """See the module docstring. `current()` keeps returning the same tuple until an answer changes
    it (the planner remembers its "can never fit" verdicts per catalog)."""

    def __init__(
        self,
        master_url: MasterUrl = "",
        *,
        interval: float = 30.0,
        timeout: float = 5.0,
        credentials: tuple[str, str] | None = None,
        fetch: Fetch | None = None,
        gpu_model_attribute: str = "gpu_model",
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.master_url = master_url  # may be set after construction (it may need the runtime)
        self._interval = interval
        self._timeout = timeout
        self._credentials = credentials
        self._fetch = fetch or self._http_get
        self._gpu_model_attribute = gpu_model_attribute
        self.active = active  # the thread reads the master only while this says so (the leader)
        self._catalog: tuple[AgentSlot, ...] | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0  # answers read (for tests and metrics)
        self._failing = False

    def current(self) -> tuple[AgentSlot, ...] | None:
        """The agents of the last answer (None before the first one, or when the master knew none)."""
        return self._catalog

    def refresh(self) -> bool:
        """Read the master once; False (the last catalog kept) when it cannot be read."""
        base = self.master_url() if callable(self.master_url) else self.master_url
        if not base:
            return False
        try:
            answer = self._fetch(base.rstrip("/") + "/master/slaves")
            catalog = catalog_from_master_state(answer, self._gpu_model_attribute)
        except Exception as exc:  # an unreachable or odd master: keep what we had
            # Said once per outage (the thread retries every second until a first answer).
            log.log(logging.DEBUG if self._failing else logging.WARNING,
                    "cannot read the agents from %s: %s", base, exc)
            self._failing = True
            return False
        self._failing = False
        self.refreshes += 1
        if catalog != self._catalog:
            self._catalog = catalog or None
        return True

    def start(self) -> AgentCatalog:
        self._thread = threading.Thread(target=self._run, name="agent-catalog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(self._timeout + 1)

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self.active():
                self._stopped.wait(1.0)
                continue
            # Until a first answer, try every second (the driver may not have found the master yet).
            wait = self._interval if self.refresh() or self._catalog is not None else 1.0
            self._stopped.wait(min(wait, self._interval))

    def _http_get(self, url: str) -> Mapping[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self._credentials is not None:
            token = base64.b64encode(":".join(self._credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            answer = json.load(response)
        if not isinstance(answer, Mapping):
            raise ValueError("the answer is not a JSON object")
        return answer
