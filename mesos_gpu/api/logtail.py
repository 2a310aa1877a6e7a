"""The last N lines of a task's sandbox file, read backwards through the agent (`GET .../logs?tail=N`).

`read_tail(read, lines, limit)` asks the file's size (`/files/read` with `offset=-1`, which Mesos answers
with `{"data": "", "offset": <size>}`), then reads blocks of TAIL_BLOCK bytes backwards from that end until
it holds more than `lines` line ends or `limit` bytes. It returns the last `lines` lines (a final line
without a newline counts, as `tail` counts it), where they start and where the file ended when read.
When the lines asked for are longer than `limit` bytes, the answer starts at the first line that begins
within the last `limit` bytes (`truncated`). Bytes appended while it reads are left for the next read
(from `next_offset`), so a follower that starts from a tail neither repeats nor skips output. A
multi-byte character cut by a read boundary arrives as U+FFFD, as in any read by byte offset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TAIL_BLOCK", "Tail", "last_lines", "read_tail"]

#: Bytes asked of the agent per read while reading backwards.
TAIL_BLOCK = 64 * 1024

#: `read(offset, length)`: the agent's `/files/read` answer ({"data", "offset"}) for that span.
Reader = Callable[[int, int], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tail:
    """What `read_tail` found: `data` spans the bytes [offset, next_offset) of the file."""

    data: str
    offset: int
    next_offset: int
    truncated: bool


def last_lines(text: str, count: int) -> str:
    """The last `count` lines of `text` (a final line without a newline counts)."""
    if count <= 0:
        return ""
    return "".join(deque(text.splitlines(keepends=True), maxlen=count))


def _line_ends(text: str) -> int:
    """How many lines `text` ends (a newline before the last character counts; a trailing one not)."""
    return text.count("\n", 0, max(0, len(text) - 1))


async def _read_span(read: Reader, start: int, length: int) -> str:
    """The bytes [start, start + length) as text, in as many reads as the agent needs."""
    parts, got = [], 0
    while got < length:
        data = str((await read(start + got, length - got)).get("data") or "")
        if not data:
            break
        parts.append(data)
        got += len(data.encode("utf-8"))
    return "".join(parts)


async def read_tail(read: Reader, lines: int, limit: int) -> Tail:
    """The last `lines` lines of the file `read` reads, at most `limit` bytes of them (module docstring)."""
    end = int((await read(-1, 0)).get("offset") or 0)
    if lines <= 0 or end == 0:
        return Tail("", end, end, False)
    start, text = end, ""
    while start > 0 and end - start < limit and _line_ends(text) < lines:
        size = min(TAIL_BLOCK, start, limit - (end - start))
        start -= size
        text = await _read_span(read, start, size) + text
    kept = last_lines(text, lines)
    truncated = kept == text and start > 0
    if truncated and "\n" in text[:-1]:       # drop the line cut by the limit (and any broken character)
        kept = text[text.index("\n") + 1:]
    return Tail(kept, end - len(kept.encode("utf-8")), end, truncated)
