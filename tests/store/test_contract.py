"""The store contract, run on the in-memory store and on the ZooKeeper store (real server)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from mesos_gpu.store.base import (
    MAX_RECORD_BYTES,
    Conflict,
    InvalidRecord,
    NotFound,
    StoreUnavailable,
    TooLarge,
    VersionConflict,
)
from tests.store.conftest import StoreBackend
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def run_threads(count: int, target: Any) -> list[Any]:
    """Run `target(index)` on `count` threads started together; return results (or exceptions)."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = target(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


# -- jobs ------------------------------------------------------------------------------------------


def test_create_then_get_returns_version_0_and_the_same_data(store: Any) -> None:
    data = {"name": "mnist", "roles": {"worker": {"instances": 2, "gpus": 1.5}}, "tags": [1, None, True]}
    created = store.create("job-1", data)
    assert (created.id, created.data, created.version) == ("job-1", data, 0)
    read = store.get("job-1")
    assert (read.id, read.data, read.version) == ("job-1", data, 0)


def test_records_are_copies_that_callers_cannot_mutate(store: Any) -> None:
    data = {"name": "a", "env": {"X": "1"}}
    created = store.create("job-1", data)
    data["env"]["X"] = "changed"
    created.data["env"]["X"] = "changed too"
    store.get("job-1").data["name"] = "changed as well"
    assert store.get("job-1").data == {"name": "a", "env": {"X": "1"}}


def test_create_of_an_existing_job_is_a_conflict(store: Any) -> None:
    store.create("job-1", {"n": 1})
    with pytest.raises(Conflict, match="job-1"):
        store.create("job-1", {"n": 2})
    assert store.get("job-1").data == {"n": 1}


def test_get_of_a_missing_job_is_not_found(store: Any) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.get("nope")


def test_compare_and_set_bumps_the_version_by_one(store: Any) -> None:
    record = store.create("job-1", {"state": "PENDING"})
    record = store.compare_and_set("job-1", {"state": "STAGING"}, record.version)
    assert record.version == 1
    record = store.compare_and_set("job-1", {"state": "RUNNING"}, record.version)
    assert (record.data, record.version) == ({"state": "RUNNING"}, 2)
    assert store.get("job-1") == record


def test_compare_and_set_with_a_stale_version_is_a_conflict_and_writes_nothing(store: Any) -> None:
    store.create("job-1", {"state": "PENDING"})
    store.compare_and_set("job-1", {"state": "RUNNING"}, 0)
    with pytest.raises(VersionConflict, match="job-1: expected version 0, found 1") as caught:
        store.compare_and_set("job-1", {"state": "KILLED"}, 0)
    assert (caught.value.key, caught.value.expected, caught.value.actual) == ("job-1", 0, 1)
    assert store.get("job-1").data == {"state": "RUNNING"}


def test_compare_and_set_many_writes_each_at_its_next_version_or_nothing_of_a_refused_one(store: Any) -> None:
    store.create_many([("a", {"n": 0}), ("b", {"n": 0}), ("c", {"n": 0})])
    store.compare_and_set("c", {"n": 1}, 0)
    assert store.compare_and_set_many([("a", {"n": 1}, 0), ("c", {"n": 2}, 1)]) == [1, 2]
    assert [(r.id, r.data["n"], r.version) for r in store.list()] == [("a", 1, 1), ("b", 0, 0), ("c", 2, 2)]
    with pytest.raises(VersionConflict, match="b"):
        store.compare_and_set_many([("a", {"n": 9}, 1), ("b", {"n": 9}, 5)])
    with pytest.raises(NotFound, match="nope"):
        store.compare_and_set_many([("a", {"n": 9}, 1), ("nope", {"n": 9}, 0)])
    assert store.get("a").data == {"n": 1} and store.get("a").version == 1   # one write: all or nothing
    assert store.compare_and_set_many([]) == []


def test_compare_and_set_of_a_missing_job_is_not_found(store: Any) -> None:
    with pytest.raises(NotFound):
        store.compare_and_set("nope", {"a": 1}, 0)


def test_concurrent_compare_and_set_loses_no_update(backend: StoreBackend) -> None:
    stores = [backend.open() for _ in range(3)]
    stores[0].create("counter", {"n": 0})
    conflicts = Counter[int]()

    def increment(index: int) -> None:
        store = stores[index]
        for _ in range(8):
            while True:
                record = store.get("counter")
                try:
                    store.compare_and_set("counter", {"n": record.data["n"] + 1}, record.version)
                    break
                except Conflict:
                    conflicts[index] += 1

    assert run_threads(3, increment) == [None, None, None]
    final = stores[0].get("counter")
    assert final.data == {"n": 24}
    assert final.version == 24


def test_delete_checks_the_version(store: Any) -> None:
    store.create("job-1", {"a": 1})
    store.compare_and_set("job-1", {"a": 2}, 0)
    with pytest.raises(VersionConflict, match="expected version 0, found 1"):
        store.delete("job-1", 0)
    store.delete("job-1", 1)
    with pytest.raises(NotFound):
        store.get("job-1")
    with pytest.raises(NotFound):
        store.delete("job-1", 1)


def test_delete_without_a_version_deletes_whatever_the_version(store: Any) -> None:
    store.create("job-1", {"a": 1})
    store.compare_and_set("job-1", {"a": 2}, 0)
    store.delete("job-1", None)
    assert store.ids() == []
    store.create("job-1", {"a": 3})  # the id can be used again
    assert store.get("job-1").version == 0


def test_ids_and_list_are_sorted_and_carry_versions(store: Any) -> None:
    assert store.ids() == []
    assert store.list() == []
    for job_id in ["b", "c", "a"]:
        store.create(job_id, {"id": job_id})
    store.compare_and_set("c", {"id": "c", "x": 1}, 0)
    assert store.ids() == ["a", "b", "c"]
    assert [(r.id, r.data, r.version) for r in store.list()] == [
        ("a", {"id": "a"}, 0),
        ("b", {"id": "b"}, 0),
        ("c", {"id": "c", "x": 1}, 1),
    ]


def test_other_clients_see_the_same_records(backend: StoreBackend) -> None:
    first, second = backend.open(), backend.open()
    first.create("job-1", {"a": 1})
    assert second.get("job-1").data == {"a": 1}
    second.compare_and_set("job-1", {"a": 2}, 0)
    with pytest.raises(Conflict):
        first.compare_and_set("job-1", {"a": 3}, 0)


@pytest.mark.parametrize("job_id", ["", "a/b", ".", "..", "zookeeper", "tab\there", "x" * 201, None, 7])
def test_invalid_job_ids_are_rejected(store: Any, job_id: Any) -> None:
    with pytest.raises(InvalidRecord):
        store.create(job_id, {"a": 1})


@pytest.mark.parametrize(
    "data", [["not", "a", "dict"], {"x": float("nan")}, {"x": object()}, {1: "non-str key"}, "text"]
)
def test_data_that_is_not_a_json_object_is_rejected(store: Any, data: Any) -> None:
    if data == {1: "non-str key"}:
        # json turns int keys into strings: accepted, and read back with the string key
        store.create("job-1", data)
        assert store.get("job-1").data == {"1": "non-str key"}
        return
    with pytest.raises(InvalidRecord):
        store.create("job-1", data)
    assert store.ids() == []


def test_a_record_of_exactly_the_limit_is_stored_and_one_byte_more_is_too_large(store: Any) -> None:
    overhead = len('{"blob":""}')
    exactly = {"blob": "x" * (MAX_RECORD_BYTES - overhead)}
    record = store.create("big", exactly)
    assert store.get("big").data == exactly
    too_large = {"blob": "x" * (MAX_RECORD_BYTES - overhead + 1)}
    with pytest.raises(TooLarge, match="1000001 bytes"):
        store.compare_and_set("big", too_large, record.version)
    with pytest.raises(TooLarge):
        store.create("bigger", too_large)
    # a multi-byte character counts by its UTF-8 size
    with pytest.raises(TooLarge):
        store.create("wide", {"blob": "é" * (MAX_RECORD_BYTES // 2)})
    assert store.ids() == ["big"]
    store.compare_and_set("big", {"small": True}, record.version)  # the connection is still fine


def test_create_many_creates_each_item_at_version_0_in_order(store: Any) -> None:
    items = [(f"job-{i}", {"n": i}) for i in range(25)]
    results = store.create_many(items)
    assert [(r.id, r.data, r.version) for r in results] == [(job_id, data, 0) for job_id, data in items]
    assert sorted(store.ids()) == sorted(job_id for job_id, _ in items)
    assert store.create_many([]) == []


def test_create_many_answers_each_failing_item_alone_and_creates_the_others(store: Any) -> None:
    store.create("taken", {"n": 0})
    overhead = len('{"blob":""}')
    items = [
        ("a", {"n": 1}),
        ("taken", {"n": 2}),
        ("bad/id", {"n": 3}),
        ("huge", {"blob": "x" * (MAX_RECORD_BYTES - overhead + 1)}),
        ("b", {"n": 4}),
        ("a", {"n": 5}),            # the same id twice in one batch: the second one conflicts
    ]
    results = store.create_many(items)
    assert [type(r).__name__ for r in results] == [
        "Versioned", "Conflict", "InvalidRecord", "TooLarge", "Versioned", "Conflict",
    ]
    assert store.get("a").data == {"n": 1} and store.get("b").data == {"n": 4}
    assert store.get("taken").data == {"n": 0}
    assert sorted(store.ids()) == ["a", "b", "taken"]


def test_create_many_splits_what_one_write_cannot_carry(store: Any) -> None:
    half = {"blob": "x" * (MAX_RECORD_BYTES // 2)}
    results = store.create_many([(f"half-{i}", half) for i in range(3)])
    assert [r.version for r in results] == [0, 0, 0]
    assert store.get("half-2").data == half
    store.create("after", {"fine": True})     # the connection is still fine


def test_concurrent_create_many_never_gives_one_id_to_two_writers(store: Any) -> None:
    results = run_threads(6, lambda i: store.create_many([("shared", {"writer": i}), (f"own-{i}", {"w": i})]))
    winners = [i for i, batch in enumerate(results) if not isinstance(batch[0], Exception)]
    assert len(winners) == 1
    assert store.get("shared").data == {"writer": winners[0]}
    assert all(isinstance(batch[0], Conflict) for i, batch in enumerate(results) if i not in winners)
    assert all(batch[1].version == 0 for batch in results)


# -- idempotent submits ----------------------------------------------------------------------------


def test_a_retried_submit_returns_the_first_job(store: Any) -> None:
    first = store.submit("job-1", {"n": 1}, idempotency_key="key-A")
    assert first.created
    assert (first.record.id, first.record.version) == ("job-1", 0)
    again = store.submit("job-2", {"n": 1}, idempotency_key="key-A")
    assert not again.created
    assert again.record.id == "job-1"
    assert store.ids() == ["job-1"]
    assert store.job_for_idempotency_key("key-A") == "job-1"
    assert store.job_for_idempotency_key("key-B") is None


def test_a_retried_submit_returns_the_job_as_it_is_now(store: Any) -> None:
    store.submit("job-1", {"state": "PENDING"}, idempotency_key="k")
    store.compare_and_set("job-1", {"state": "RUNNING"}, 0)
    again = store.submit("job-9", {"state": "PENDING"}, idempotency_key="k")
    assert (again.created, again.record.data, again.record.version) == (False, {"state": "RUNNING"}, 1)


def test_submits_with_different_keys_or_no_key_create_different_jobs(store: Any) -> None:
    assert store.submit("job-1", {}, idempotency_key="a").created
    assert store.submit("job-2", {}, idempotency_key="b").created
    assert store.submit("job-3", {}, idempotency_key=None).created
    assert store.ids() == ["job-1", "job-2", "job-3"]


def test_a_submit_whose_job_id_exists_is_a_conflict_and_records_no_key(store: Any) -> None:
    store.create("job-1", {"n": 1})
    with pytest.raises(Conflict):
        store.submit("job-1", {"n": 2}, idempotency_key="fresh")
    assert store.job_for_idempotency_key("fresh") is None
    assert store.get("job-1").data == {"n": 1}


def test_keys_of_any_text_are_accepted(store: Any) -> None:
    for index, key in enumerate(["a/b/../c", "spaces and ünïcode ✓", "x" * 255]):
        assert store.submit(f"job-{index}", {}, idempotency_key=key).created
        assert store.job_for_idempotency_key(key) == f"job-{index}"
    with pytest.raises(InvalidRecord):
        store.submit("job-x", {}, idempotency_key="")
    with pytest.raises(InvalidRecord):
        store.submit("job-x", {}, idempotency_key="x" * 256)


def test_deleting_a_job_frees_its_idempotency_key(store: Any) -> None:
    store.submit("job-1", {}, idempotency_key="k")
    store.delete("job-1", 0)
    assert store.job_for_idempotency_key("k") is None
    again = store.submit("job-2", {}, idempotency_key="k")
    assert again.created
    assert store.ids() == ["job-2"]


def test_racing_submits_with_one_key_create_exactly_one_job(backend: StoreBackend) -> None:
    stores = [backend.open() for _ in range(3)]

    def submit(index: int) -> Any:
        store = stores[index % len(stores)]
        return store.submit(f"job-{index}", {"from": index}, idempotency_key="the-key")

    results = run_threads(8, submit)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.created for r in results) == 1
    winner = next(r.record for r in results if r.created)
    assert {r.record.id for r in results} == {winner.id}
    assert stores[0].ids() == [winner.id]
    assert stores[0].get(winner.id).data == {"from": int(winner.id.split("-")[1])}


# -- framework id ----------------------------------------------------------------------------------


def test_framework_id_is_none_then_kept_across_clients(backend: StoreBackend) -> None:
    store = backend.open()
    assert store.get_framework_id() is None
    store.set_framework_id("5f3d-0001")
    store.close()
    later = backend.open()
    assert later.get_framework_id() == "5f3d-0001"
    later.set_framework_id("5f3d-0002")
    assert later.get_framework_id() == "5f3d-0002"
    later.clear_framework_id()
    later.clear_framework_id()
    assert later.get_framework_id() is None
    with pytest.raises(ValueError):
        later.set_framework_id("")


def test_a_closed_store_refuses_work(store: Any) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreUnavailable):
        store.get("job-1")
    with pytest.raises(StoreUnavailable):
        store.create("job-1", {})


# -- leader election -------------------------------------------------------------------------------


class Contender:
    """A contender that records its callbacks in order."""

    def __init__(self, backend: StoreBackend, identifier: str) -> None:
        self.store = backend.open()
        self.identifier = identifier
        self.events: list[str] = []
        self.election = self.store.leader_election()

    def campaign(self) -> None:
        self.election.campaign(
            self.identifier,
            on_elected=lambda: self.events.append("elected"),
            on_lost=lambda reason: self.events.append(f"lost: {reason}"),
        )

    @property
    def leads(self) -> bool:
        """is_leader, and its on_elected has run without an on_lost after it."""
        return self.election.is_leader and bool(self.events) and self.events[-1] == "elected"


def start_three(backend: StoreBackend) -> list[Contender]:
    """Three contenders that joined in order (a campaign is asynchronous: wait for each to join)."""
    contenders = [Contender(backend, f"10.0.0.{i}:8080") for i in range(3)]
    for count, contender in enumerate(contenders, start=1):
        contender.campaign()
        election, joined = contender.election, count
        wait_until(lambda: len(election.contenders()) == joined, what=f"contender {count}")  # noqa: B023
    wait_until(lambda: any(c.leads for c in contenders), what="a leader")
    return contenders


def leader_of(contenders: list[Contender]) -> Contender:
    leaders = [c for c in contenders if c.election.is_leader]
    assert len(leaders) == 1, [c.events for c in contenders]
    return leaders[0]


def assert_callbacks_alternate(contender: Contender) -> None:
    kinds = [event.split(":")[0] for event in contender.events]
    assert kinds == ["elected", "lost"] * (len(kinds) // 2) + ["elected"] * (len(kinds) % 2), kinds


def test_exactly_one_of_three_contenders_leads(backend: StoreBackend) -> None:
    contenders = start_three(backend)
    leader = leader_of(contenders)
    assert leader is contenders[0]  # the first to campaign
    assert leader.events == ["elected"]
    for contender in contenders:
        assert contender.election.leader_identifier() == leader.identifier
        assert contender.election.contenders() == [c.identifier for c in contenders]
    assert [c.events for c in contenders[1:]] == [[], []]
    # Asked of the backend itself: only the leader verifies its leadership.
    assert [c.election.verify_leadership() for c in contenders] == [True, False, False]


def test_the_next_contender_leads_when_the_leaders_client_closes(backend: StoreBackend) -> None:
    contenders = start_three(backend)
    contenders[0].store.close()
    assert contenders[0].events == ["elected", "lost: resigned"]
    wait_until(lambda: contenders[1].leads, what="the second contender to lead")
    assert not contenders[2].election.is_leader
    assert contenders[2].election.leader_identifier() == contenders[1].identifier
    assert contenders[2].election.contenders() == [contenders[1].identifier, contenders[2].identifier]
    contenders[1].store.close()
    wait_until(lambda: contenders[2].leads, what="the third contender to lead")
    assert contenders[2].events == ["elected"]


def test_resign_hands_over_and_is_idempotent(backend: StoreBackend) -> None:
    contenders = start_three(backend)
    contenders[0].election.resign()
    assert not contenders[0].election.is_leader
    assert not contenders[0].election.verify_leadership()
    assert contenders[0].events == ["elected", "lost: resigned"]
    contenders[0].election.resign()
    wait_until(lambda: contenders[1].leads, what="the second contender to lead")
    assert contenders[1].election.contenders() == [c.identifier for c in contenders[1:]]
    contenders[0].campaign()  # may campaign again; joins at the end
    wait_until(lambda: len(contenders[1].election.contenders()) == 3, what="the contender to rejoin")
    assert contenders[1].election.contenders()[-1] == contenders[0].identifier
    assert leader_of(contenders) is contenders[1]


def test_campaigning_twice_is_an_error(backend: StoreBackend) -> None:
    contender = Contender(backend, "a:1")
    contender.campaign()
    with pytest.raises(RuntimeError, match="already campaigning"):
        contender.campaign()


def test_on_lost_fires_when_the_leaders_session_expires(backend: StoreBackend) -> None:
    contenders = start_three(backend)
    backend.expire_session(contenders[0].store)
    wait_until(lambda: len(contenders[0].events) >= 2, what="on_lost of the expired leader")
    assert contenders[0].events[1].startswith("lost: ZooKeeper")
    wait_until(lambda: contenders[1].leads, what="the second contender to lead")
    # the expired contender campaigns again with its new session, now last in line
    wait_until(
        lambda: contenders[2].election.contenders()
        == [contenders[1].identifier, contenders[2].identifier, contenders[0].identifier],
        what="the expired contender to rejoin last",
    )
    assert leader_of(contenders) is contenders[1]
    assert_callbacks_alternate(contenders[0])
    assert contenders[0].events[-1].startswith("lost")


def test_a_leader_whose_connection_drops_stops_leading_then_leads_again(backend: StoreBackend) -> None:
    contenders = start_three(backend)
    backend.drop_connection(contenders[0].store)
    wait_until(lambda: len(contenders[0].events) >= 2, what="on_lost of the leader")
    assert contenders[0].events[1] == "lost: ZooKeeper connection suspended"
    # the session survived: it is still first in line, so it is elected again
    wait_until(lambda: contenders[0].leads, what="the leader to be elected again")
    assert contenders[0].events == ["elected", "lost: ZooKeeper connection suspended", "elected"]
    assert leader_of(contenders) is contenders[0]


def test_a_failing_callback_does_not_break_the_election(backend: StoreBackend) -> None:
    store = backend.open()
    first, second = store.leader_election(), backend.open().leader_election()
    seen: list[str] = []

    def explode() -> None:
        seen.append("elected")
        raise RuntimeError("boom")

    first.campaign("a:1", on_elected=explode, on_lost=seen.append)
    wait_until(lambda: seen == ["elected"], what="the failing on_elected")
    wait_until(lambda: first.contenders() == ["a:1"], what="the first contender")
    second_seen: list[str] = []
    second.campaign("b:1", on_elected=lambda: second_seen.append("elected"), on_lost=second_seen.append)
    wait_until(lambda: len(first.contenders()) == 2, what="the second contender")
    first.resign()
    assert seen == ["elected", "resigned"]  # resign returns after on_lost has run
    wait_until(lambda: second_seen == ["elected"], what="the handover")
