"""`mesos_gpu.api.logtail.read_tail` against an in-memory file read as the agent's /files/read reads it:
a table of cases and a Hypothesis property (the answer is the last N lines, spanning [offset, end))."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.api import logtail
from mesos_gpu.api.logtail import last_lines, read_tail


class File:
    """`/files/read` of one file: offset -1 gives the size; reads are capped at `cap` bytes each."""

    def __init__(self, content: bytes, cap: int = 1 << 20) -> None:
        self.content, self.cap, self.reads = content, cap, 0

    async def read(self, offset: int, length: int) -> dict[str, Any]:
        self.reads += 1
        if offset == -1:
            return {"data": "", "offset": len(self.content)}
        chunk = self.content[offset:offset + min(length, self.cap)]
        return {"data": chunk.decode("utf-8", "replace"), "offset": offset}


def tail(content: str, lines: int, limit: int = 1 << 20, cap: int = 1 << 20) -> logtail.Tail:
    return asyncio.run(read_tail(File(content.encode(), cap).read, lines, limit))


@pytest.mark.parametrize(("content", "lines", "data"), [
    ("", 3, ""),
    ("a\nb\nc\n", 0, ""),
    ("a\nb\nc\n", 1, "c\n"),
    ("a\nb\nc\n", 2, "b\nc\n"),
    ("a\nb\nc\n", 9, "a\nb\nc\n"),
    ("a\nb\nc", 1, "c"),
    ("a\nb\nc", 2, "b\nc"),
    ("\n\n\n", 2, "\n\n"),
    ("héllo\nwörld\n", 1, "wörld\n"),
])
def test_tail_table(content: str, lines: int, data: str) -> None:
    got = tail(content, lines)
    size = len(content.encode())
    assert (got.data, got.next_offset, got.truncated) == (data, size, False)
    assert got.offset == size - len(data.encode())


def test_a_big_file_is_read_backwards_in_blocks_only_as_far_as_needed(monkeypatch) -> None:
    monkeypatch.setattr(logtail, "TAIL_BLOCK", 100)
    content = "".join(f"line {i:05d}\n" for i in range(10_000)).encode()
    file = File(content, cap=37)                    # the agent answers short reads too
    got = asyncio.run(read_tail(file.read, 3, 1 << 20))
    assert got.data == "line 09997\nline 09998\nline 09999\n"
    assert file.reads < 10                          # never the whole file


def test_lines_longer_than_the_limit_start_at_a_whole_line() -> None:
    content = "x" * 50 + "\n" + "y" * 20 + "\n" + "z" * 20 + "\n"
    got = tail(content, 3, limit=45)
    assert got.truncated and got.data == "y" * 20 + "\n" + "z" * 20 + "\n"
    assert got.offset == len(content) - len(got.data)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab\né", max_size=300) | st.text(alphabet="ab\n", max_size=300),
       lines=st.integers(0, 12), block=st.integers(1, 40), cap=st.integers(1, 50))
def test_the_answer_is_the_last_lines(text: str, lines: int, block: int, cap: int) -> None:
    logtail.TAIL_BLOCK = block
    try:
        raw = text.encode()
        file = File(raw, cap)
        got = asyncio.run(read_tail(file.read, lines, 1 << 20))
    finally:
        logtail.TAIL_BLOCK = 64 * 1024
    assert got.next_offset == len(raw)
    if "é" in text:     # a read boundary may cut a character (U+FFFD, as any byte-offset read): ASCII below
        return
    assert got.data == last_lines(text, lines)
    assert raw[got.offset:got.next_offset].decode() == got.data
