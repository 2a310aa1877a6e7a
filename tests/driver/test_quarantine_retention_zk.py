"""Quarantined records no recovery loads (marker `skip`) and retention, against the real ZooKeeper: the
sweep deletes one once it is older than the finished-job retention (its finished time; an older record
without one: from when this leader first saw it) and keeps a younger one, `GET /v1/jobs/{id}` answers it
until then and 404 after, `mesos_gpu_jobs_quarantined_skipped` counts it (the leader only), a record
marked `skip` during the term is deleted at the version written, and a deposed leader deletes none.
Before, the sweep worked from the state machine's jobs only: skip records stayed in the store for ever."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mesos_gpu.core.errors import NotLeaderError
from mesos_gpu.core.records import new_job_record
from mesos_gpu.core.retention import RetentionPolicy
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver.quarantine import MARKER, quarantined, skipped
from mesos_gpu.driver.retention import RetentionSweeper
from mesos_gpu.store.zk import ZooKeeperStore
from tests.api.conftest import app_client, json_of
from tests.api.promtext import families, value
from tests.driver.test_retention_zk import HOUR, Clock, backend, close, leading, runtime_on  # noqa: F401
from tests.driver.test_take_stored_quarantine import POISON, poisoned
from tests.store.conftest import ZooKeeperStoreBackend
from tests.waiting import wait_until

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(120)]

DAY = 24 * HOUR
GAUGE = "mesos_gpu_jobs_quarantined_skipped"
SPEC = validate_job({"name": "poison", "command": "true", "cpus": 0.1, "mem": 32})


def skip_record(job_id: str, finished_at: float | None) -> dict[str, Any]:
    """A record quarantined and marked `skip` by an earlier leader, finished at `finished_at` (None: an
    older record with neither a finished time nor a marker time)."""
    submitted = (finished_at or 1_000_000.0) - 600.0
    data = quarantined(new_job_record(job_id, SPEC, submitted), 2, finished_at or 0.0, skip=True)
    if finished_at is None:
        data["finished_at"] = None
        del data[MARKER]["at"]
    return data


def scrape(client: Any) -> str:
    response = client.request("GET", "/metrics")
    assert response.code == 200
    return cast(str, response.body.decode())


def test_skip_records_are_deleted_once_older_than_retention_and_answered_until_then(
        backend: ZooKeeperStoreBackend) -> None:  # noqa: F811
    clock = Clock()
    start = clock.now
    store = backend.open()
    store.create_many([("old", skip_record("old", start - 2 * DAY)),        # past the day's retention
                       ("young", skip_record("young", start - HOUR)),
                       ("legacy", skip_record("legacy", None))])            # counted from first seen
    first = leading(backend, clock)
    standby = runtime_on(backend.open(), clock, "b:2")
    standby.start()
    client = app_client(first)
    standby_client = app_client(standby)
    try:
        assert not {"old", "young", "legacy"} & {job["id"] for job in first.jobs(state=None)}  # left out
        old = client.request("GET", "/v1/jobs/old")
        assert old.code == 200 and json_of(old)["state"] == "FAILED"
        assert json_of(old)["message"].startswith("quarantined:")
        assert value(scrape(client), GAUGE) == 3
        assert GAUGE not in families(scrape(standby_client))      # the leader only reports it
        sweeper = RetentionSweeper(first, RetentionPolicy(max_age_seconds=DAY, max_finished=None))

        assert sweeper.sweep() == 1
        assert sorted(store.ids()) == ["legacy", "young"]
        gone = client.request("GET", "/v1/jobs/old")
        assert gone.code == 404 and "old" in json_of(gone)["error"]["message"]
        assert client.request("GET", "/v1/jobs/young").code == 200
        assert value(scrape(client), GAUGE) == 2

        clock.now = start + DAY - 30 * 60        # young: 23.5 h + 1 h old; legacy: first seen 23.5 h ago
        assert sweeper.sweep() == 1
        assert store.ids() == ["legacy"]
        assert client.request("GET", "/v1/jobs/young").code == 404
        assert json_of(client.request("GET", "/v1/jobs/legacy"))["state"] == "FAILED"
        assert value(scrape(client), GAUGE) == 1

        clock.now = start + DAY + 60
        assert sweeper.sweep() == 1
        assert store.ids() == []
        assert client.request("GET", "/v1/jobs/legacy").code == 404
        assert value(scrape(client), GAUGE) == 0
        assert sweeper.deleted == 3
    finally:
        close(client)
        close(standby_client)
        first.stop()
        standby.stop()


def test_a_job_marked_skip_in_this_term_is_deleted_by_retention(backend: ZooKeeperStoreBackend) -> None:  # noqa: F811
    clock = Clock()
    runtime = runtime_on(backend.open(), clock, "a:1")
    poisoned(runtime, even_failed=True)      # the state machine fails on it even FAILED: marked skip
    runtime.start()
    client = app_client(runtime)
    try:
        wait_until(lambda: runtime.is_leader, 20, "leadership")
        view, created = runtime.submit(POISON)
        assert created
        job_id = view["id"]
        store = backend.open()
        wait_until(lambda: skipped(store.get(job_id).data), 20, "the poison job quarantined, skipped")
        wait_until(lambda: runtime.is_leader and runtime._driver is not None, 20, "leading again")
        assert value(scrape(client), GAUGE) == 1
        sweeper = RetentionSweeper(runtime, RetentionPolicy(max_age_seconds=DAY, max_finished=None))
        clock.now += DAY - 60
        assert sweeper.sweep() == 0 and job_id in store.ids()        # younger than the retention: kept
        assert client.request("GET", f"/v1/jobs/{job_id}").code == 200
        clock.now += 120
        assert sweeper.sweep() == 1                # a fenced delete at the version the mark wrote
        assert job_id not in store.ids()
        assert client.request("GET", f"/v1/jobs/{job_id}").code == 404
        assert value(scrape(client), GAUGE) == 0
    finally:
        close(client)
        runtime.stop()


def test_a_deposed_leader_deletes_no_skip_record(backend: ZooKeeperStoreBackend) -> None:  # noqa: F811
    clock = Clock()
    backend.open().create_many([("old", skip_record("old", clock.now - 30 * DAY))])
    first = leading(backend, clock)
    standby = runtime_on(backend.open(), clock, "b:2")
    standby.start()
    try:
        sweeper = RetentionSweeper(first, RetentionPolicy(max_age_seconds=HOUR, max_finished=None))
        backend.expire_session(cast(ZooKeeperStore, first.store))   # the standby leads now
        wait_until(lambda: standby.is_leader, 30, "the standby to lead")
        with pytest.raises(NotLeaderError):        # a paused leader that has not noticed: fenced
            sweeper._step(lambda: True)
        assert backend.open().ids() == ["old"]
        assert sweeper.deleted == 0
        assert len(first._stored_failures.skipped) == 1        # and it forgot nothing
    finally:
        first.stop()
        standby.stop()
