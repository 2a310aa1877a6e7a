"""Fakes for runtime tests: an election told what ZooKeeper would answer, a memory store holding it, and
a driver recording each call the runtime makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesos_gpu.store.memory import MemoryBackend, MemoryStore


class Election:
    is_leader = True
    confirms = True  # what ZooKeeper would answer now

    def campaign(self, identifier: str, on_elected: Callable[[], None], on_lost: Any) -> None:
        on_elected()

    def resign(self) -> None:
        self.is_leader = False

    def verify_leadership(self) -> bool:
        return self.is_leader and self.confirms

    def leader_identifier(self) -> str | None:
        return "a:1"


class Store(MemoryStore):
    def __init__(self) -> None:
        super().__init__(MemoryBackend())
        self.election = Election()

    def leader_election(self) -> Any:
        return self.election


class Driver:
    """Records each call the runtime makes."""

    connected = True
    aborted = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: self.calls.append(name)
