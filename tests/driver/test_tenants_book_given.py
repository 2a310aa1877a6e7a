"""The scheduler process builds its tenants' book (`TenantsBook`) and gives it to the runtime's constructor
(issue 17: collaborators come through the constructor, never set afterwards); the API's `/v1/tenants`
routes use that same book, so a PUT changes what the state machine applies."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mesos_gpu import scheduler_main
from mesos_gpu.core.config import ENV, SchedulerSettings
from mesos_gpu.driver.runtime import SchedulerRuntime
from mesos_gpu.store.settings import TenantsBook
from tests.driver.fakes import Driver, Store
from tests.waiting import wait_until

FILE_DOCUMENT = {"tenants": {"team-a": {"quota": 2}}}
PUT_DOCUMENT = {"tenants": {"team-a": {"quota": 3}, "team-b": {"quota": 1}}}


def test_the_runtime_is_built_with_the_book_the_api_then_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    given: list[Any] = []

    class Recording(SchedulerRuntime):
        def __init__(self, **kwargs: Any) -> None:
            given.append(kwargs.get("tenancy"))
            super().__init__(**kwargs)

    monkeypatch.setattr(scheduler_main, "SchedulerRuntime", Recording)
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps(FILE_DOCUMENT))
    settings = SchedulerSettings.from_env({ENV.API_PORT: "0", ENV.MASTER: "127.0.0.1:1",
                                           ENV.ZK: "zk://127.0.0.1:1/unused",
                                           ENV.TENANTS_FILE: str(tenants)})
    process = scheduler_main.SchedulerProcess(settings, store=Store(), tick_seconds=3600,
                                              driver_factory=lambda callbacks, info: Driver())  # type: ignore
    process.start()
    try:
        runtime = process.runtime
        assert runtime is not None
        wait_until(lambda: runtime.is_leader, 5, "leadership")
        book = given[0]
        assert isinstance(book, TenantsBook) and runtime.tenancy is book
        assert book.current() is not None and book.current().to_dict()["tenants"]["team-a"]["quota"] == 2
        request = urllib.request.Request(f"{process.api_url}/v1/tenants", method="PUT",
                                         data=json.dumps(PUT_DOCUMENT).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        assert runtime.tenancy is book and sorted(book.current().to_dict()["tenants"]) == ["team-a", "team-b"]
    finally:
        process.stop()


def test_preemption_gets_the_agent_catalog_for_agents_no_offer_was_seen_from() -> None:
    # A new leader of a full cluster sees no offer: the preemption round's trial plans take the agents'
    # attributes (constraints, profile groups, share capabilities) from the scheduler's agent catalog.
    settings = SchedulerSettings.from_env({ENV.API_PORT: "0", ENV.MASTER: "127.0.0.1:1",
                                           ENV.ZK: "zk://127.0.0.1:1/unused", ENV.PREEMPTION: "true"})
    process = scheduler_main.SchedulerProcess(settings, store=Store(), tick_seconds=3600,
                                              driver_factory=lambda callbacks, info: Driver())  # type: ignore
    process.start()
    try:
        runtime = process.runtime
        assert runtime is not None
        wait_until(lambda: runtime.is_leader, 5, "leadership")
        preemption = runtime._state.preemption
        assert preemption is not None and preemption.catalog is not None
        assert preemption.catalog == process._agents.current
    finally:
        process.stop()
