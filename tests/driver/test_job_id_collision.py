"""Job ids are the job's name and 32 random bits (`driver.submits.new_job_id`): two jobs of one name can
draw the same id. The store refuses the second; the submit path must write it again under a fresh id,
never answer the client 409 for an id it did not choose (nor 500), never lose the job, and never touch the
job that holds the id. Against the memory store and the real ZooKeeper store (whose batch transaction
fails as a whole on one taken id, so each job is then created alone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from mesos_gpu.core.errors import UnavailableError
from mesos_gpu.core.state import new_job_record
from mesos_gpu.core.validation import validate_job
from mesos_gpu.driver import submits
from mesos_gpu.driver.control import JobsStored
from mesos_gpu.driver.submits import ID_ATTEMPTS, SubmitPath, _Item
from tests.driver.fakes import Store
from tests.store.conftest import ZooKeeperStoreBackend

NOW = 1_000_000.0
SPEC = validate_job({"name": "j", "command": "true", "cpus": 1, "mem": 64})
TAKEN = "j-0000abcd"


@pytest.fixture(params=["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield Store()
        return
    backend = ZooKeeperStoreBackend(request.getfixturevalue("zk_url"))
    try:
        yield backend.open()
    finally:
        backend.close_all()


def draws(monkeypatch: pytest.MonkeyPatch, *hexes: str) -> list[str]:
    """Make `new_job_id` draw `hexes` (8 hex digits each) in order; returns the ids drawn so far."""
    left, drawn = list(hexes), []

    def uuid4() -> uuid.UUID:
        drawn.append(left[0])
        return uuid.UUID(left.pop(0) + "0" * 24)

    monkeypatch.setattr(submits.uuid, "uuid4", uuid4)
    return drawn


def handed(message: JobsStored) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result([])
    return future


def path_on(store: Any) -> SubmitPath:
    return SubmitPath(store, may_act=lambda: True, leader=lambda: "a:1", hand_over=handed,
                      known=lambda job_id: None, view=lambda job_id: {}, clock=lambda: NOW)


def item(job_id: str, key: str | None) -> _Item:
    return _Item(job_id, new_job_record(job_id, SPEC, NOW), SPEC, key)


def test_a_job_whose_id_is_taken_is_stored_under_a_fresh_id_and_the_holder_is_untouched(
    store: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    holder = store.create(TAKEN, dict(new_job_record(TAKEN, SPEC, NOW - 60), message="the first"))
    drawn = draws(monkeypatch, "0000abcd", "1111aaaa", "2222bbbb")   # the plain job draws the taken id again
    # a plain job and a keyed one drew the taken id, a third plain job did not: one batch
    answers = path_on(store)._write([item(TAKEN, None), item(TAKEN, "key-1"), item("j-3333cccc", None)])

    ids = []
    for answer in answers:
        assert isinstance(answer, tuple), f"answered {answer!r}"
        view, created = answer
        assert created and view["state"] == "PENDING"
        assert store.get(view["id"]).data == {k: v for k, v in view.items() if k != "wait_reason"}
        ids.append(view["id"])
    assert ids[0] != TAKEN and ids[1] != TAKEN and ids[2] == "j-3333cccc" and len(set(ids)) == 3
    assert {ids[0], ids[1]} <= {f"j-{h}" for h in drawn[1:]}
    assert store.get(TAKEN).data == holder.data and store.get(TAKEN).version == 0
    assert store.job_for_idempotency_key("key-1") == ids[1]
    assert sorted(store.ids()) == sorted([TAKEN, *ids])


def test_ids_taken_at_every_draw_answer_503_and_store_nothing(
    store: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.create(TAKEN, new_job_record(TAKEN, SPEC, NOW - 60))
    drawn = draws(monkeypatch, *["0000abcd"] * (2 * (ID_ATTEMPTS - 1)))   # each job draws again, each time
    answers = path_on(store)._write([item(TAKEN, None), item(TAKEN, "key-1")])
    for answer in answers:
        assert isinstance(answer, UnavailableError) and answer.http_status == 503
        assert f"{ID_ATTEMPTS} draws" in str(answer)
    assert store.ids() == [TAKEN] and store.job_for_idempotency_key("key-1") is None
    assert len(drawn) == 2 * (ID_ATTEMPTS - 1)
