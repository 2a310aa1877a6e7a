"""Per-task status update streams of a local agent, as Mesos' task status update manager runs them.

Each task's updates are sent to the master one at a time: the next only after the previous is
acknowledged; an unacknowledged update is re-sent (same uuid) after `initial_interval`, doubling up
to `max_interval` (Mesos: 10 s rising to 10 min).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mesos_gpu.core.wire import TERMINAL_TASK_STATES

log = logging.getLogger(__name__)


class Timers(Protocol):
    """What the streams need of a clock: tornado's IOLoop satisfies it."""

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> object: ...

    def remove_timeout(self, timeout: object) -> None: ...


SendUpdate = Callable[[str, dict[str, Any]], None]  # (framework_id, status)


@dataclass
class _Stream:
    framework_id: str
    task_id: str
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    timer: object | None = None
    interval: float = 0.0
    sent: bool = False  # the head has been sent at least once


class StatusUpdateStreams:
    """All task streams of one agent. Call only from the agent's loop thread."""

    def __init__(
        self, send: SendUpdate, timers: Timers, initial_interval: float = 10.0, max_interval: float = 600.0
    ) -> None:
        self._send = send
        self._timers = timers
        self.initial_interval = initial_interval
        self.max_interval = max(max_interval, initial_interval)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._paused = False

    def update(self, framework_id: str, status: dict[str, Any]) -> None:
        """Queue `status` (complete, with a uuid) on its task's stream; send it now if it is the head."""
        task_id = status["task_id"]["value"]
        key = (framework_id, task_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(framework_id, task_id)
        stream.pending.append(status)
        if len(stream.pending) == 1:
            self._send_head(stream, fresh=True)

    def acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> bool:
        """An ACK from the scheduler: pop the head if the uuid matches and send the next one."""
        stream = self._streams.get((framework_id, task_id))
        if stream is None or not stream.pending:
            log.info("ignoring ACK of %s/%s: no pending update", framework_id, task_id)
            return False
        head = stream.pending[0]
        if head.get("uuid") != uuid_b64:
            log.info("ignoring ACK of %s/%s: uuid %s is not the pending one", framework_id, task_id, uuid_b64)
            return False
        self._cancel(stream)
        stream.pending.popleft()
        stream.sent = False
        if stream.pending:
            self._send_head(stream, fresh=True)
        elif head.get("state") in TERMINAL_TASK_STATES:
            del self._streams[(framework_id, task_id)]
        return True

    def pending(self, framework_id: str, task_id: str) -> list[dict[str, Any]]:
        stream = self._streams.get((framework_id, task_id))
        return list(stream.pending) if stream else []

    def unacknowledged(self) -> list[tuple[str, dict[str, Any]]]:
        """Every (framework_id, status) not yet acknowledged, heads first."""
        return [(s.framework_id, st) for s in self._streams.values() for st in s.pending]

    def drop_framework(self, framework_id: str) -> None:
        """Forget a removed framework's streams: its updates are never delivered."""
        for key in [k for k in self._streams if k[0] == framework_id]:
            self._cancel(self._streams.pop(key))

    def set_paused(self, paused: bool) -> None:
        """While paused (no master) nothing is sent; on resume every head is re-sent at once."""
        self._paused = paused
        if not paused:
            self.resend_all()

    def resend_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream.pending:
                self._cancel(stream)
                self._send_head(stream, fresh=not stream.sent)

    def close(self) -> None:
        for stream in self._streams.values():
            self._cancel(stream)
        self._streams.clear()

    def _send_head(self, stream: _Stream, fresh: bool) -> None:
        if fresh:
            stream.interval = self.initial_interval
        # Arm the retry first: the send may run an ACK (and the next send) before it returns.
        stream.timer = self._timers.call_later(stream.interval, self._retry, stream)
        if self._paused:
            return
        status = stream.pending[0]
        stream.sent = True
        try:
            self._send(stream.framework_id, status)
        except Exception:  # the master must not break the agent; the retry re-sends it
            log.exception("status update %s of task %s not delivered", status.get("uuid"), stream.task_id)

    def _retry(self, stream: _Stream) -> None:
        stream.timer = None
        if self._streams.get((stream.framework_id, stream.task_id)) is not stream or not stream.pending:
            return
        stream.interval = min(stream.interval * 2, self.max_interval)
        self._send_head(stream, fresh=False)

    def _cancel(self, stream: _Stream) -> None:
        if stream.timer is not None:
            self._timers.remove_timeout(stream.timer)
            stream.timer = None
