"""`zkclient.call_with_retry`: a store call is over within its deadline, its last attempt included (an
attempt waits up to `BoundedCalls.timeout` for a connection, then as long for its answer: without the
bound, one begun just before the deadline ran up to twice that past it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mesos_gpu.store import zkclient
from mesos_gpu.store.base import StoreUnavailable
from mesos_gpu.store.zk import ZooKeeperStore, connect
from mesos_gpu.store.zkclient import BoundedCalls, call_with_retry

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(60)]


@pytest.fixture
def silent(zk_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ZooKeeperStore, BoundedCalls]]:
    """A connected store whose reads ZooKeeper never answers, and calls that wait 5 s per attempt."""
    store = connect(zk_url, timeout=10.0)
    calls = BoundedCalls(store.client, timeout=5.0)
    client = store.client
    monkeypatch.setattr(client, "get_async", lambda *args, **kwargs: client.handler.async_result())
    try:
        yield store, calls
    finally:
        calls.close()
        store.close()


def test_a_call_is_over_within_its_deadline(silent: tuple[ZooKeeperStore, BoundedCalls]) -> None:
    store, calls = silent
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="within 1 s"):
        call_with_retry(1.0, calls.get, store.root)
    assert time.monotonic() - began < 1.5  # was 5 s: the first attempt's own wait
    assert zkclient.time_left() is None  # the bound ends with the call


def test_a_nested_call_keeps_the_outer_deadline(silent: tuple[ZooKeeperStore, BoundedCalls]) -> None:
    store, calls = silent
    began = time.monotonic()
    with pytest.raises(StoreUnavailable):
        call_with_retry(1.0, lambda: call_with_retry(10.0, calls.get, store.root))
    assert time.monotonic() - began < 1.5

