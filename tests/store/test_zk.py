"""What only the ZooKeeper store has: its root from the URL, its layout, lost answers, a server outage."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss
from kazoo.recipe.election import Election

from mesos_gpu.core.wire import parse_zk_url
from mesos_gpu.local.zookeeper import ZooKeeperServer, free_port
from mesos_gpu.store.base import (
    Conflict,
    ConnectionState,
    StoreUnavailable,
    VersionConflict,
    idempotency_key_name,
)
from mesos_gpu.store.zk import DEFAULT_ROOT, ZooKeeperStore, connect, store_root
from tests.waiting import wait_until

pytestmark = [pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    ("url", "framework_name", "root"),
    [
        ("zk://127.0.0.1:2181/mesos-gpu", None, "/mesos-gpu"),
        ("zk://a:1,b:2,c:3/x/y", None, "/x/y"),
        ("zk://a:2181", None, DEFAULT_ROOT),
        ("zk://a:2181/", None, DEFAULT_ROOT),
        ("zk://a:2181/mesos-gpu", "prod", "/mesos-gpu/prod"),
        ("zk://a:2181", "prod", "/mesos-gpu/prod"),
        ("zk://user:pass@[::1]:2181/p", "prod", "/p/prod"),
    ],
)
def test_the_store_root_is_the_url_path_plus_the_framework_name(
    url: str, framework_name: str | None, root: str
) -> None:
    assert store_root(parse_zk_url(url).path, framework_name) == root


@pytest.mark.parametrize("framework_name", ["", "a/b"])
def test_a_framework_name_is_one_node_name(framework_name: str) -> None:
    with pytest.raises(ValueError, match="framework name"):
        store_root("/mesos-gpu", framework_name)


@pytest.mark.parametrize(
    "url", ["http://a:2181/p", "a:2181/p", "zk:///p", "zk://a/p", "zk://a:port/p", "zk://a:0/p", "zk://a:1/x/../y"]
)
def test_connect_refuses_a_malformed_url_before_connecting(url: str) -> None:
    with pytest.raises(ValueError, match="ZooKeeper URL"):
        connect(url, timeout=0.1)


def test_connect_to_a_server_that_is_not_there_is_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"within 1\.0 s"):
        connect(f"zk://127.0.0.1:{free_port()}/x", timeout=1.0)
    assert time.monotonic() - started < 5


@pytest.fixture
def raw(zk_hosts: str) -> Any:
    client = KazooClient(zk_hosts)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


@pytest.mark.zookeeper
def test_the_node_layout_under_the_framework_root(zk_url: str, zk_chroot: str, raw: KazooClient) -> None:
    store = connect(zk_url, "prod")
    try:
        root = f"{zk_chroot}/prod"
        assert store.root == root
        store.submit("job-1", {"name": "mnist", "a": {"z": 1, "b": [2, "é"]}}, idempotency_key="key/1")
        store.set_framework_id("fw-1")
        data, stat = raw.get(f"{root}/jobs/job-1")
        assert data == '{"a":{"b":[2,"é"],"z":1},"name":"mnist"}'.encode()  # sorted, compact, UTF-8
        assert stat.version == 0
        key_node = idempotency_key_name("key/1")
        assert raw.get(f"{root}/jobs/job-1/idempotency_key")[0] == key_node.encode()
        assert json.loads(raw.get(f"{root}/idempotency/{key_node}")[0]) == {"job_id": "job-1", "key": "key/1"}
        assert raw.get(f"{root}/framework_id")[0] == b"fw-1"
        assert sorted(raw.get_children(root)) == ["framework_id", "idempotency", "jobs", "leader"]
        store.delete("job-1", 0)
        assert raw.get_children(f"{root}/jobs") == []
        assert raw.get_children(f"{root}/idempotency") == []
    finally:
        store.close()


@pytest.mark.zookeeper
def test_kazoo_election_recipe_reads_our_contenders(zk_url: str, zk_chroot: str, raw: KazooClient) -> None:
    stores = [connect(zk_url) for _ in range(2)]
    try:
        elections = [store.leader_election() for store in stores]
        for index, election in enumerate(elections):
            election.campaign(f"10.0.0.{index}:80", on_elected=lambda: None, on_lost=lambda reason: None)
            wait_until(lambda n=index + 1: len(elections[0].contenders()) == n, what="the contender")
        assert Election(raw, f"{zk_chroot}/leader").contenders() == ["10.0.0.0:80", "10.0.0.1:80"]
        wait_until(lambda: elections[0].is_leader, what="the first to lead")
        nodes = raw.get_children(f"{zk_chroot}/leader")
        owners = {raw.exists(f"{zk_chroot}/leader/{node}").ephemeralOwner for node in nodes}
        assert owners == {store.client.client_id[0] for store in stores}  # ephemeral, one per session
    finally:
        for store in stores:
            store.close()
    assert raw.get_children(f"{zk_chroot}/leader") == []


class LoseAnswerOnce:
    """Wraps a kazoo async method: the server applies the first request, but its answer is lost
    (ConnectionLoss), as when the connection drops between a write and its reply."""

    def __init__(self, method: Any) -> None:
        self.method = method
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = self.method(*args, **kwargs)
        if self.calls == 1:
            result.get(timeout=10)
            raise ConnectionLoss("answer lost (test)")
        return result


class LoseRequestOnce(LoseAnswerOnce):
    """The first request never reaches the server (ConnectionLoss before it is sent)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionLoss("request lost (test)")
        return self.method(*args, **kwargs)


@pytest.mark.zookeeper
def test_writes_whose_answer_was_lost_are_recognised_on_retry(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = connect(zk_url)
    try:
        client = store.client
        for name in ["create_async", "set_async", "delete_async"]:
            lose = LoseAnswerOnce(getattr(client, name))
            monkeypatch.setattr(client, name, lose)
            if name == "create_async":
                assert store.create("job-1", {"a": 1}).version == 0
            elif name == "set_async":
                assert store.compare_and_set("job-1", {"a": 2}, 0).version == 1  # not a Conflict
            else:
                store.delete("job-1", 1)  # not NotFound
            assert lose.calls == 2
            monkeypatch.undo()
        assert store.ids() == []
        # a request lost before the server saw it, retried into someone else's job: still a Conflict
        store.create("job-2", {"a": 1})
        monkeypatch.setattr(client, "create_async", LoseRequestOnce(client.create_async))
        with pytest.raises(Conflict):
            store.create("job-2", {"a": "other"})
        assert store.get("job-2").data == {"a": 1}
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.zookeeper
def test_a_submit_whose_answer_was_lost_reports_created(zk_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = connect(zk_url)
    try:
        real_transaction = store.client.transaction

        def transaction() -> Any:
            request = real_transaction()
            request.commit_async = LoseAnswerOnce(request.commit_async)
            return request

        calls: list[int] = []

        def counting_transaction() -> Any:
            calls.append(1)
            return transaction() if len(calls) == 1 else real_transaction()

        monkeypatch.setattr(store.client, "transaction", counting_transaction)
        result = store.submit("job-1", {"a": 1}, idempotency_key="k")
        assert len(calls) == 2
        assert result.created
        assert result.record.id == "job-1"
        assert store.ids() == ["job-1"]
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.zookeeper
def test_a_batch_of_writes_whose_answer_was_lost_is_recognised_on_retry(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = connect(zk_url)
    try:
        store.create_many([("job-1", {"a": 1}), ("job-2", {"a": 2})])
        real_transaction = store.client.transaction
        calls: list[int] = []

        def first_transaction_loses() -> Any:
            calls.append(1)
            request = real_transaction()
            if len(calls) == 1:
                request.commit_async = LoseAnswerOnce(request.commit_async)
            return request

        monkeypatch.setattr(store.client, "transaction", first_transaction_loses)
        assert store.compare_and_set_many([("job-1", {"a": 10}, 0), ("job-2", {"a": 20}, 0)]) == [1, 1]
        assert len(calls) == 2     # the retry was refused (versions moved): our own first attempt
        assert [(r.data, r.version) for r in store.list()] == [({"a": 10}, 1), ({"a": 20}, 1)]
        # someone else wrote one of them meanwhile: a conflict, not ours
        calls.clear()
        monkeypatch.setattr(store.client, "transaction", first_transaction_loses)
        store.client.set(f"{store._jobs}/job-2", b'{"a": "theirs"}', 1)
        with pytest.raises(VersionConflict, match="job-2"):
            store.compare_and_set_many([("job-1", {"a": 11}, 1), ("job-2", {"a": 21}, 1)])
        assert store.get("job-1").data == {"a": 10}    # all or nothing
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.zookeeper
def test_a_batch_of_writes_larger_than_one_packet_goes_in_several_transactions(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = connect(zk_url)
    try:
        big = "x" * 300_000
        store.create_many([(f"job-{i}", {"n": i}) for i in range(5)])
        real_transaction = store.client.transaction
        calls: list[int] = []

        def counting() -> Any:
            calls.append(1)
            return real_transaction()

        monkeypatch.setattr(store.client, "transaction", counting)
        versions = store.compare_and_set_many([(f"job-{i}", {"n": i, "pad": big}, 0) for i in range(5)])
        assert versions == [1] * 5
        assert len(calls) == 2     # 300 kB each: three fit one packet (MAX_RECORD_BYTES), then two
        assert [r.data["n"] for r in store.list()] == list(range(5))
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.zookeeper
def test_a_group_commit_whose_answer_was_lost_reports_its_items_created(
    zk_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = connect(zk_url)
    try:
        store.create("theirs", {"a": "other"})
        real_transaction = store.client.transaction
        calls: list[int] = []

        def first_transaction_loses(loss: type[LoseAnswerOnce]) -> Callable[[], Any]:
            def transaction() -> Any:
                calls.append(1)
                request = real_transaction()
                if len(calls) == 1:
                    request.commit_async = loss(request.commit_async)
                return request

            return transaction

        monkeypatch.setattr(store.client, "transaction", first_transaction_loses(LoseAnswerOnce))
        results = store.create_many([("job-1", {"a": 1}), ("job-2", {"a": 2})])
        assert len(calls) == 2     # the retried transaction is refused: the jobs exist
        assert [(r.id, r.version) for r in results] == [("job-1", 0), ("job-2", 0)]
        # a batch that was never applied and meets someone else's job: that item alone conflicts
        calls.clear()
        monkeypatch.setattr(store.client, "transaction", first_transaction_loses(LoseRequestOnce))
        results = store.create_many([("theirs", {"a": "mine"}), ("job-3", {"a": 3})])
        assert isinstance(results[0], Conflict) and results[1].version == 0
        assert store.get("theirs").data == {"a": "other"}
    finally:
        monkeypatch.undo()
        store.close()


@pytest.mark.zookeeper
@pytest.mark.slow
def test_a_server_outage_stops_the_leader_and_fails_calls_within_the_deadline(tmp_path: Path) -> None:
    port = free_port()
    server = ZooKeeperServer(port=port, workdir=tmp_path).start()
    store = None
    try:
        store = connect(f"zk://{server.hosts}/outage", command_deadline=1.0, session_timeout=20.0)
        store.create("job-1", {"a": 1})
        states: list[ConnectionState] = []
        store.add_connection_listener(states.append)
        events: list[str] = []
        election = store.leader_election()
        election.campaign("me:1", on_elected=lambda: events.append("elected"), on_lost=events.append)
        wait_until(lambda: events == ["elected"], what="the leader")

        server.stop()
        wait_until(lambda: events == ["elected", "ZooKeeper connection suspended"], what="on_lost")
        assert not election.is_leader
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get("job-1")
        assert time.monotonic() - started < 4

        server = ZooKeeperServer(port=port, workdir=tmp_path).start()  # same data, same port
        wait_until(lambda: states[-1:] == [ConnectionState.CONNECTED], timeout=20, what="reconnection")
        assert ConnectionState.LOST not in states  # the session survived the outage
        wait_until(lambda: events[-1:] == ["elected"], what="the leader to be elected again")
        assert store.get("job-1").data == {"a": 1}

        # resigning while ZooKeeper is down: resign returns, the node goes once the server is back
        server.stop()
        wait_until(lambda: events[-1] == "ZooKeeper connection suspended", what="on_lost again")
        started = time.monotonic()
        election.resign(timeout=1.0)
        assert time.monotonic() - started < 3
        server = ZooKeeperServer(port=port, workdir=tmp_path).start()
        wait_until(lambda: store.client.get_children("/outage/leader") == [], timeout=20, what="withdrawal")
        suspended = "ZooKeeper connection suspended"
        assert events == ["elected", suspended, "elected", suspended]
        assert ConnectionState.LOST not in states  # withdrawn by the campaign thread, not by an expiry
    finally:
        if store is not None:
            store.close()
        server.stop()


@pytest.mark.parametrize("root", ["relative", "/", ""])
def test_a_store_needs_an_absolute_root_below_slash(root: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        ZooKeeperStore(KazooClient("127.0.0.1:1"), root)  # checked before any connection
