"""Group commit: one writer thread, batches of what queued during the previous write, answers per item."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import wait

import pytest

from mesos_gpu.driver.groupcommit import GroupCommit, GroupCommitClosedError


def test_a_lone_item_is_committed_at_once_in_its_own_batch():
    batches: list[list[int]] = []
    group = GroupCommit(lambda batch: batches.append(batch) or [item * 10 for item in batch])
    try:
        assert group.submit(4).result(5) == 40
        assert batches == [[4]]
    finally:
        group.close()


class Gate:
    """A commit that records its batches and holds each write until `release` is set."""

    def __init__(self, answer: Callable[[int], int] = lambda item: item) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[int]] = []
        self.answer = answer

    def __call__(self, batch: list[int]) -> list[int]:
        self.batches.append(batch)
        self.entered.set()
        self.release.wait(5)
        return [self.answer(item) for item in batch]


def test_items_queued_during_a_write_share_the_next_batch_in_order():
    gate = Gate(lambda item: -item)
    release, entered, batches = gate.release, gate.entered, gate.batches
    group = GroupCommit(gate, max_batch=4)
    try:
        first = group.submit(0)
        assert entered.wait(5)
        later = [group.submit(i) for i in range(1, 7)]    # all queue while batch [0] is written
        release.set()
        assert [f.result(5) for f in [first, *later]] == [0, -1, -2, -3, -4, -5, -6]
        assert batches == [[0], [1, 2, 3, 4], [5, 6]]     # max_batch caps a batch
        assert (group.batches, group.items) == (3, 7)
    finally:
        release.set()
        group.close()


def test_each_item_gets_its_own_answer_or_error():
    group = GroupCommit(lambda batch: [ValueError(f"bad {item}") if item < 0 else item for item in batch])
    try:
        good, bad = group.submit(1), group.submit(-1)
        assert good.result(5) == 1
        with pytest.raises(ValueError, match="bad -1"):
            bad.result(5)
    finally:
        group.close()


def test_a_failing_commit_fails_every_item_of_its_batch_and_the_writer_goes_on():
    calls: list[list[str]] = []

    def commit(batch: list[str]) -> list[str]:
        calls.append(batch)
        if "boom" in batch:
            raise RuntimeError("store down")
        if "short" in batch:
            return []                                      # a commit must answer every item
        return batch

    group = GroupCommit(commit)
    try:
        with pytest.raises(RuntimeError, match="store down"):
            group.submit("boom").result(5)
        with pytest.raises(RuntimeError, match="answered 0 items of 1"):
            group.submit("short").result(5)
        assert group.submit("fine").result(5) == "fine"
    finally:
        group.close()


def test_close_writes_what_is_queued_and_refuses_more():
    group = GroupCommit(lambda batch: batch)
    futures = [group.submit(i) for i in range(50)]
    group.close()
    done, not_done = wait(futures, timeout=5)
    assert not not_done and sorted(f.result() for f in done) == list(range(50))
    with pytest.raises(GroupCommitClosedError):
        group.submit(1)
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(lambda batch: batch, max_batch=0)


def test_many_threads_get_their_own_answers():
    group = GroupCommit(lambda batch: [item * 2 for item in batch])
    results: dict[int, int] = {}
    barrier = threading.Barrier(16)

    def client(n: int) -> None:
        barrier.wait(5)
        for i in range(50):
            results[n * 1000 + i] = group.submit(n * 1000 + i).result(5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    group.close()
    assert len(results) == 800 and all(value == key * 2 for key, value in results.items())
    assert group.items == 800 and group.batches <= 800


def test_a_caller_that_gave_up_before_its_batch_is_not_written_and_the_writer_survives():
    gate = Gate()
    release, entered, batches = gate.release, gate.entered, gate.batches
    group = GroupCommit(gate)
    try:
        running = group.submit(1)
        assert entered.wait(5)
        gave_up = group.submit(2)
        assert gave_up.cancel()                  # queued, not started: the caller's timeout cancels it
        assert not running.cancel()              # being written: too late to cancel
        release.set()
        assert running.result(5) == 1
        assert group.submit(3).result(5) == 3    # the writer goes on
        assert batches == [[1], [3]]             # 2 was never written
    finally:
        release.set()
        group.close()


def test_an_awaiting_caller_that_times_out_does_not_kill_the_writer():
    import asyncio

    release = threading.Event()
    group = GroupCommit(lambda batch: release.wait(5) and batch)

    async def impatient() -> bool:
        try:
            await asyncio.wait_for(asyncio.wrap_future(group.submit(1)), 0.1)
        except TimeoutError:
            return True
        return False

    try:
        assert asyncio.run(impatient())
        release.set()
        assert group.submit(2).result(5) == 2
    finally:
        release.set()
        group.close()
