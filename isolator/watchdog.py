"""The share host's GPU memory watchdog for `capped` shares: every second, NVML's per-process used memory
on the host's GPU (nvmlDeviceGetComputeRunningProcesses, or the fake's declared usage), summed over each
watched task's process tree (its descendants and its process group); a task above its cap is reported
once to `on_over(task_id, used MiB, allowed MiB)`, which kills it.

    dog = MemoryWatchdog(backend, gpu_index, on_over=lambda task, used, allowed: ...)
    dog.watch("task-1", root_pid=4242, limit_mib=8192); dog.start()
    dog.check_once()        # what one round finds (tests)
    dog.forget("task-1"); dog.stop()
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from isolator.discovery import NvmlError
from isolator.sharenvml import ShareNvml

log = logging.getLogger("isolator.sharehost")

MIB = 1024 * 1024


def over_message(used: int, allowed: int) -> str:
    """The TASK_FAILED message of a capped share killed for its memory."""
    return f"GPU memory {used} MiB used, {allowed} MiB allowed (capped share)"


def _proc_table(proc: str = "/proc") -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process."""
    table: dict[int, tuple[int, int]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat")) as handle:
                text = handle.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) >= 3:
            table[int(name)] = (int(fields[1]), int(fields[2]))
    return table


def process_tree(root: int, table: dict[int, tuple[int, int]] | None = None) -> set[int]:
    """`root`, its descendants, and every process of its process group (children that were reparented
    keep the group)."""
    table = _proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    group = table.get(root, (0, root))[1]
    found.update(pid for pid, (_, pgrp) in table.items() if pgrp == group and group > 1)
    return found


@dataclass
class Watched:
    root_pid: int
    limit_mib: int
    warned: bool = False


class MemoryWatchdog:
    """Watches the capped shares of one GPU (NVML index `index` of `backend`, already initialised)."""

    def __init__(
        self,
        backend: ShareNvml,
        index: int,
        on_over: Callable[[str, int, int], None],
        interval: float = 1.0,
        tree: Callable[[int], Iterable[int]] = process_tree,
    ) -> None:
        self.backend = backend
        self.index = index
        self.on_over = on_over
        self.interval = interval
        self._tree = tree
        self._watched: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, task_id: str, root_pid: int, limit_mib: int) -> None:
        with self._lock:
            self._watched[task_id] = Watched(root_pid, limit_mib)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._watched.pop(task_id, None)

    def usage(self) -> dict[str, int]:
        """MiB each watched task uses on the GPU now."""
        with self._lock:
            watched = dict(self._watched)
        if not watched:
            return {}
        used = {p.pid: p.used_bytes for p in self.backend.running_processes(self.index)}
        out = {}
        for task_id, w in watched.items():
            tree = [pid for pid in self._tree(w.root_pid) if pid in used]
            if any(used[pid] is None for pid in tree) and not w.warned:
                w.warned = True  # NVML cannot tell (no permission): said once, counted as 0
                log.warning("task %s: NVML does not report the GPU memory of its processes", task_id)
            out[task_id] = sum(used[pid] or 0 for pid in tree) // MIB
        return out

    def check_once(self) -> list[tuple[str, int, int]]:
        """One round: the tasks over their cap as (task id, used, allowed); each is then forgotten."""
        over = []
        for task_id, used in self.usage().items():
            with self._lock:
                watched = self._watched.get(task_id)
                if watched is None or used <= watched.limit_mib:
                    continue
                del self._watched[task_id]
            over.append((task_id, used, watched.limit_mib))
        return over

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gpu-memory-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for task_id, used, allowed in self.check_once():
                    log.warning("task %s: %s", task_id, over_message(used, allowed))
                    self.on_over(task_id, used, allowed)
            except NvmlError as exc:
                log.error("the GPU memory watchdog cannot read NVML: %s", exc)
            except Exception:
                log.exception("the GPU memory watchdog failed a round")
