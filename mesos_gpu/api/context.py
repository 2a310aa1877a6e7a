"""What every API handler shares (`ApiContext`, built by `mesos_gpu.api.app.make_app` and handed to each
handler's `initialize`), and the job store's connection state as the health endpoints and `/metrics` show it.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from mesos_gpu.api.auth import TokenAuthenticator
from mesos_gpu.api.mesos import MesosReader
from mesos_gpu.api.metrics import RequestStats
from mesos_gpu.api.service import SchedulerService
from mesos_gpu.core.model import Containerizer

#: Seconds an answer may wait for a client that does not read it before its connection is closed.
WRITE_TIMEOUT = 60.0


@dataclass
class ZooKeeperConnection:
    """The job store's connection as its listener last reported it ("CONNECTED" until told otherwise)."""

    state: str = "CONNECTED"

    def update(self, state: Any) -> None:
        """The store's connection listener: remember `state` (a ConnectionState or its name)."""
        self.state = str(getattr(state, "value", state))

    @property
    def connected(self) -> bool:
        """True while the store is connected."""
        return self.state == "CONNECTED"


@dataclass
class ApiContext:
    """Everything the handlers share; built by `mesos_gpu.api.app.make_app`."""

    service: SchedulerService
    auth: TokenAuthenticator
    mesos: MesosReader
    executor: Executor
    launcher_bundle: bytes
    openapi: bytes
    zookeeper: ZooKeeperConnection = field(default_factory=ZooKeeperConnection)
    requests: RequestStats = field(default_factory=RequestStats)
    launcher_etag: str = ""
    # The containerizer of a job that names none (MESOS_GPU_DEFAULT_CONTAINERIZER).
    default_containerizer: Containerizer = Containerizer.MESOS
    write_timeout: float = WRITE_TIMEOUT

    def __post_init__(self) -> None:
        self.launcher_etag = '"' + hashlib.sha256(self.launcher_bundle).hexdigest()[:32] + '"'
