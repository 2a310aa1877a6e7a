"""A record the store cannot encode (a lone surrogate, which UTF-8 cannot encode; nesting too deep to
encode) fails only its own write with InvalidRecord (400), whatever else shares its write: the other
items of a `create_many` and of a group commit are stored (issue 20, item 4). Run on both stores."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from mesos_gpu.driver.groupcommit import GroupCommit
from mesos_gpu.store.base import InvalidRecord, Versioned, encode_record
from mesos_gpu.store.zk import connect

pytestmark = pytest.mark.timeout(60)

LONE = "\ud800"


def deep(levels: int) -> dict[str, Any]:
    """A record nested deeper than json.dumps can encode (RecursionError)."""
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return {"deep": value}


def test_encoding_a_lone_surrogate_is_an_invalid_record_naming_where() -> None:
    with pytest.raises(InvalidRecord) as caught:
        encode_record({"spec": {"env": {"A": f"x{LONE}"}}})
    assert caught.value.http_status == 400
    assert str(caught.value) == (
        "job data at /spec/env/A: must be valid Unicode text (a lone surrogate \\ud800 at character 1)"
    )
    with pytest.raises(InvalidRecord) as caught:
        encode_record({"labels": {f"k{LONE}": "v"}})
    assert str(caught.value) == (
        'job data at /labels: key "k\\ud800" must be valid Unicode text (a lone surrogate \\ud800 at '
        "character 1)"
    )
    with pytest.raises(InvalidRecord, match="not JSON-ready"):
        encode_record(deep(100_000))
    assert encode_record({"ok": "été \U0001f600"}) == '{"ok":"été \U0001f600"}'.encode()


def test_create_refuses_an_unencodable_record_and_stores_nothing(store: Any) -> None:
    with pytest.raises(InvalidRecord, match="lone surrogate"):
        store.create("bad", {"command": f"echo {LONE}"})
    with pytest.raises(InvalidRecord, match="lone surrogate"):
        store.create(f"bad-{LONE}", {"command": "true"})
    assert store.ids() == []


def test_submit_refuses_an_unencodable_record_or_key_and_records_no_key(store: Any) -> None:
    with pytest.raises(InvalidRecord, match="lone surrogate"):
        store.submit("bad", {"command": LONE}, idempotency_key="key-1")
    assert store.job_for_idempotency_key("key-1") is None
    with pytest.raises(InvalidRecord, match="lone surrogate"):
        store.submit("job", {"command": "true"}, idempotency_key=f"key-{LONE}")
    assert store.ids() == []
    assert store.submit("job", {"command": "true"}, idempotency_key="key-1").created


def test_compare_and_set_refuses_an_unencodable_record_and_keeps_the_old_one(store: Any) -> None:
    record = store.create("job", {"state": "PENDING"})
    with pytest.raises(InvalidRecord, match="lone surrogate"):
        store.compare_and_set("job", {"state": LONE}, record.version)
    assert store.get("job") == record


def test_create_many_fails_only_the_unencodable_items(store: Any) -> None:
    items = [
        ("a", {"n": 1}),
        ("surrogate", {"command": f"echo {LONE}"}),
        ("b", {"n": 2}),
        (f"id-{LONE}", {"n": 3}),
        ("too-deep", deep(100_000)),
        ("c", {"n": 4}),
    ]
    results = store.create_many(items)
    assert [type(r).__name__ for r in results] == [
        "Versioned", "InvalidRecord", "Versioned", "InvalidRecord", "InvalidRecord", "Versioned",
    ]
    assert [r.http_status for r in results if isinstance(r, InvalidRecord)] == [400, 400, 400]
    assert sorted(store.ids()) == ["a", "b", "c"]
    assert [store.get(job_id).data for job_id in "abc"] == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_a_group_commit_of_concurrent_records_fails_only_the_unencodable_one(store: Any) -> None:
    """The writer is held on a first batch while 20 records queue: they form one batch, one of them
    unencodable; the 19 others are stored and their callers succeed."""
    entered, release = threading.Event(), threading.Event()
    sizes: list[int] = []

    def commit(batch: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        sizes.append(len(batch))
        entered.set()
        release.wait(10)
        return store.create_many(batch)

    group: GroupCommit[tuple[str, dict[str, Any]], Any] = GroupCommit(commit)
    try:
        first = group.submit(("first", {"n": -1}))
        assert entered.wait(10)
        futures = [
            group.submit((f"job-{i}", {"command": f"echo {LONE}" if i == 7 else f"echo {i}"}))
            for i in range(20)
        ]
        release.set()
        assert isinstance(first.result(10), Versioned)
        for i, future in enumerate(futures):
            if i == 7:
                with pytest.raises(InvalidRecord, match="lone surrogate"):
                    future.result(10)
            else:
                assert future.result(10).data == {"command": f"echo {i}"}
    finally:
        release.set()
        group.close()
    assert sizes == [1, 20]
    assert sorted(store.ids()) == sorted(["first"] + [f"job-{i}" for i in range(20) if i != 7])


def test_an_item_that_fails_in_an_unforeseen_way_fails_alone(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever encoding one item raises (here a RuntimeError), the others are created."""
    module = sys.modules[type(store).__module__]
    encode = module.encode_record

    def poisoned(data: dict[str, Any]) -> bytes:
        if data.get("poison"):
            raise RuntimeError("unforeseen")
        return encode(data)

    monkeypatch.setattr(module, "encode_record", poisoned)
    results = store.create_many([("a", {"n": 1}), ("p", {"poison": True}), ("b", {"n": 2})])
    assert [type(r).__name__ for r in results] == ["Versioned", "InvalidRecord", "Versioned"]
    assert str(results[1]) == "job 'p' could not be stored: RuntimeError: unforeseen"
    assert sorted(store.ids()) == ["a", "b"]


@pytest.mark.zookeeper
def test_a_zookeeper_transaction_that_fails_unforeseen_is_retried_item_by_item(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction raises (not an outage): each item is created alone; the one ZooKeeper's client
    refuses fails alone, and a node the failed transaction did write counts as created."""
    store = connect(zk_url, timeout=10.0)
    try:
        calls = store._zk
        commit, create = calls.commit, calls.create

        def failing_commit(operations: Any) -> Any:
            commit(lambda transaction: operations(_Only(transaction, "/applied")))
            raise RuntimeError("unforeseen")

        def refusing_create(path: str, data: bytes, *args: Any) -> Any:
            if path.endswith("/refused"):
                raise RuntimeError("refused")
            return create(path, data, *args)

        monkeypatch.setattr(calls, "commit", failing_commit)
        monkeypatch.setattr(calls, "create", refusing_create)
        results = store.create_many([("a", {"n": 1}), ("refused", {"n": 2}), ("applied", {"n": 3})])
        assert [type(r).__name__ for r in results] == ["Versioned", "InvalidRecord", "Versioned"]
        assert sorted(store.ids()) == ["a", "applied"]
        assert store.get("applied").data == {"n": 3}
    finally:
        store.close()


class _Only:
    """A transaction that keeps only the creates of paths ending with `suffix`."""

    def __init__(self, transaction: Any, suffix: str) -> None:
        self.transaction, self.suffix = transaction, suffix

    def create(self, path: str, data: bytes) -> None:
        if path.endswith(self.suffix):
            self.transaction.create(path, data)
