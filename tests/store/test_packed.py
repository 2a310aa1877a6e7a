"""`zkclient.packed`: a group commit's creates, in order, in transactions that fit one ZooKeeper packet."""

from __future__ import annotations

import pytest

from mesos_gpu.store.zkclient import MULTI_OP_OVERHEAD, packed


def creates(*sizes: int) -> list[tuple[int, str, bytes]]:
    """Creates whose cost (path + data + overhead) is each of `sizes` (path "/p": 2 bytes)."""
    return [(i, "/p", b"x" * (size - 2 - MULTI_OP_OVERHEAD)) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(("sizes", "groups"), [
    ((), []),
    ((100,), [[0]]),
    ((100, 100, 100), [[0, 1, 2]]),           # 300 fits exactly
    ((100, 100, 101), [[0, 1], [2]]),         # one byte over: a second transaction
    ((400, 50, 50), [[0], [1, 2]]),           # a create over the limit alone is a group of its own
    ((200, 150, 150, 200), [[0], [1, 2], [3]]),
])
def test_creates_are_packed_in_order_under_the_limit(sizes: tuple[int, ...], groups: list[list[int]]) -> None:
    packs = packed(creates(*sizes), 300)
    assert [[position for position, _, _ in group] for group in packs] == groups
