"""Settings records beside the jobs (the tenants' quotas), and the `TenantsBook` a scheduler applies.

A settings record is one small JSON document per name, kept by the job store (ZooKeeper:
`<root>/settings/<name>`; written fenced, like every write of a leader, so a deposed leader's write is
refused with NotLeader). The stores implement `SettingsStore` (`read_setting`, `write_setting`,
`delete_setting` in `zk.ZooKeeperStore` and `memory.MemoryStore`).

`TenantsBook` holds the tenants' terms a process applies (`mesos_gpu.core.tenancy.TenantsConfig`):
the record "tenants" when there is one (set at run time through `PUT /v1/tenants`), else the file of
`MESOS_GPU_TENANTS_FILE`, else none (no quotas). The leader's state machine asks `current()` at every
offer cycle, so a change takes effect at the next one; a new leader calls `reload()` before it places
anything, so it applies what the last leader stored.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from mesos_gpu.core.errors import ValidationError
from mesos_gpu.core.tenancy import TenantsConfig
from mesos_gpu.store.base import JsonDict, Versioned

__all__ = ["TENANTS", "TENANTS_BASE", "SettingsStore", "TenantsBook", "read_tenants_file",
           "tenants_file_problem"]

log = logging.getLogger(__name__)

TENANTS = "tenants"
"""The name of the tenants' settings record."""

TENANTS_BASE = "tenants-base"
"""A record `{"base": N}` added to the tenants record's own version, which restarts at 0 when the record
is created again after a reset: a reset raises the base past the last version shown, so the version
`/v1/tenants` shows never goes back."""


class SettingsStore(Protocol):
    """Small named JSON records beside the jobs (same errors as `base.JobStore`)."""

    def read_setting(self, name: str) -> Versioned[JsonDict] | None:
        """The record and its version (0 when created, +1 at each write), or None when there is none."""
        ...

    def write_setting(self, name: str, data: JsonDict) -> Versioned[JsonDict]:
        """Create or replace the record (last write wins); fenced like job writes (NotLeader)."""
        ...

    def delete_setting(self, name: str) -> bool:
        """Remove the record; whether it was there. Fenced like job writes."""
        ...


def read_tenants_file(path: str | Path) -> TenantsConfig:
    """The tenants document in the JSON file `path`; ValueError naming the file and every problem."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the tenants file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"the tenants file {path} is not JSON: {exc}") from None
    try:
        return TenantsConfig.of(document)
    except ValidationError as exc:
        problems = "; ".join(f"{error.path or '/'}: {error.message}" for error in exc.errors)
        raise ValueError(f"the tenants file {path} is not valid: {problems}") from None


def tenants_file_problem(path: str | Path | None) -> str | None:
    """What is wrong with the tenants file `path` (one line naming the file), or None when it reads as a
    valid tenants document or no file is named: a process checks it before it connects to anything."""
    if not path:
        return None
    try:
        read_tenants_file(path)
    except ValueError as exc:
        return str(exc)
    return None


class TenantsBook:
    """The tenants' terms of one scheduler process (see the module docstring). Thread-safe: the state
    machine reads `current()` on the scheduler's worker thread, the API writes from its own."""

    def __init__(self, store: SettingsStore | None, fallback: TenantsConfig | None = None,
                 fallback_file: str | None = None) -> None:
        self.store = store
        self.fallback = fallback
        self.fallback_file = fallback_file
        self._lock = threading.Lock()
        self._config = fallback
        self._version: int | None = None     # the record's version; None: the file (or nothing) applies

    def current(self) -> TenantsConfig | None:
        """The terms in force (None: no quotas)."""
        return self._config

    @property
    def source(self) -> str:
        """Where the terms come from: "store" (set at run time), "file" or "none"."""
        if self._version is not None:
            return "store"
        return "file" if self.fallback is not None else "none"

    def describe(self) -> dict[str, Any]:
        """Where the terms come from and the canonical document (None when no quotas)."""
        config, version = self._config, self._version
        return {"source": self.source, "version": version, "file": self.fallback_file,
                "config": None if config is None else config.to_dict()}

    def reload(self) -> TenantsConfig | None:
        """Read the store's record again (a new leader; a standby's read). A record that is no longer
        valid (written by hand) is logged and the file's terms apply instead."""
        record = self.store.read_setting(TENANTS) if self.store is not None else None
        config, version = self.fallback, None
        if record is not None:
            try:
                config, version = TenantsConfig.of(record.data), self._base() + record.version
            except ValidationError as exc:
                log.error("the stored tenants record is not valid (%s); using %s instead", exc.errors,
                          self.fallback_file or "no quotas")
        with self._lock:
            self._config, self._version = config, version
        return config

    def _base(self) -> int:
        """What the tenants record's own version is offset by (`TENANTS_BASE`; 0 when none)."""
        record = self.store.read_setting(TENANTS_BASE) if self.store is not None else None
        base = record.data.get("base") if record is not None else 0
        return base if isinstance(base, int) and base >= 0 else 0

    def replace(self, document: object) -> TenantsConfig:
        """Validate `document` (ValidationError with JSON paths), store it, apply it from the next cycle."""
        config = TenantsConfig.of(document)
        if self.store is None:
            raise RuntimeError("no store to keep the tenants in")
        base = self._base()
        record = self.store.write_setting(TENANTS, config.to_dict())
        with self._lock:
            self._config, self._version = config, base + record.version
        return config

    def reset(self) -> TenantsConfig | None:
        """Forget the stored record: the file's terms (or none) apply from the next cycle."""
        if self.store is None:
            raise RuntimeError("no store to keep the tenants in")
        record = self.store.read_setting(TENANTS)
        if record is not None:      # the next record starts past every version shown so far
            self.store.write_setting(TENANTS_BASE, {"base": self._base() + record.version + 1})
            self.store.delete_setting(TENANTS)
        with self._lock:
            self._config, self._version = self.fallback, None
        return self.fallback
